// The demo page: sign in as a dev user, submit code, and watch every submission's status
// change live, in every tab of the same user. Talks to the api over HTTP and to the gateway
// through VerdictFeed (client.js), whose one socket also brings the worker pools' live view.
//
// The gateway is at ws://<this page's host>:2359/ws unless the page is opened with
// ?gateway=ws://somewhere:port/ws.
import { VerdictFeed } from "/static/client.js";

const $ = (id) => document.getElementById(id);
const FINAL_AFTER = 2; // Judge0 status ids 1 (In Queue) and 2 (Processing) are not final
const SAMPLES = {
  python: 'name = input()\nprint(f"hello, {name}")\n',
  c: '#include <stdio.h>\nint main(void) {\n    char name[64];\n    scanf("%63s", name);\n    printf("hello, %s\\n", name);\n}\n',
  cpp: '#include <iostream>\n#include <string>\nint main() {\n    std::string name;\n    std::cin >> name;\n    std::cout << "hello, " << name << "\\n";\n}\n',
  javascript: 'const name = require("fs").readFileSync(0, "utf8").trim();\nconsole.log(`hello, ${name}`);\n',
};

let token = localStorage.getItem("kubejudge.token"); // shared by this browser's tabs
let user = localStorage.getItem("kubejudge.user");
let feed = null;
const languages = new Map();

function gatewayUrl() {
  const override = new URLSearchParams(location.search).get("gateway");
  if (override) return override;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.hostname}:2359/ws`;
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method, headers, body: body && JSON.stringify(body) });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) {
    const reason = payload.error || payload.detail || JSON.stringify(payload);
    throw new Error(`${method} ${path}: ${response.status} ${reason}`);
  }
  return payload;
}

async function mintToken(userId) {
  const { token: minted } = await api("/auth/dev-token", { method: "POST", body: { user_id: userId } });
  localStorage.setItem("kubejudge.token", minted);
  localStorage.setItem("kubejudge.user", userId);
  return minted;
}

function notice(text, isError = false) {
  $("notice").textContent = text;
  $("notice").className = isError ? "error" : "";
}

function row(submissionToken) {
  let tr = document.querySelector(`tr[data-token="${CSS.escape(submissionToken)}"]`);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.token = submissionToken;
    for (const name of ["token", "language", "status", "time", "memory", "tests", "output"]) {
      const td = document.createElement("td");
      td.className = name;
      tr.append(td);
    }
    tr.querySelector(".token").textContent = submissionToken;
    $("submissions").prepend(tr);
  }
  return tr;
}

function show(submission) {
  const tr = row(submission.token);
  const cell = (name) => tr.querySelector(`.${name}`);
  if (submission.language_id && languages.has(submission.language_id)) {
    cell("language").textContent = languages.get(submission.language_id);
  }
  if (submission.status) {
    cell("status").textContent = submission.status.description;
    cell("status").dataset.status = submission.status.id;
    cell("status").dataset.final = String(submission.status.id > FINAL_AFTER);
    if (submission.memory_limit_exceeded) cell("status").textContent += " (memory limit)";
  }
  if (submission.time != null) cell("time").textContent = `${submission.time} s`;
  if (submission.memory != null) cell("memory").textContent = `${submission.memory} KB`;
  if (Array.isArray(submission.tests)) {
    const passed = submission.tests.filter((test) => test.status && test.status.id === 3).length;
    cell("tests").textContent = `${passed}/${submission.tests.length}`;
  }
}

async function showOutput(submissionToken) {
  // Events carry no outputs (they fan out to every device); fetch them once it is final.
  const fields = "stdout,stderr,compile_output,message";
  const found = await api(`/submissions/${encodeURIComponent(submissionToken)}?fields=${fields}`);
  const text = found.compile_output || found.stderr || found.stdout || found.message || "";
  const cell = row(submissionToken).querySelector(".output");
  cell.textContent = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  cell.title = text;
}

function onEvent({ type, data }) {
  show(data);
  if (type === "verdict") showOutput(data.token).catch((error) => notice(error.message, true));
}

function showPools(pools) {
  const rows = pools.map((pool) => {
    const tr = document.createElement("tr");
    tr.dataset.pool = pool.pool;
    const wanted = pool.wanted ?? "–";
    for (const [name, value] of [
      ["pool", pool.pool], ["waiting", pool.waiting], ["in-flight", pool.in_flight],
      ["wanted", wanted], ["live", pool.live], ["busy", pool.busy.toFixed(1)],
    ]) {
      const td = document.createElement("td");
      td.className = name;
      td.textContent = String(value);
      tr.append(td);
    }
    const bar = document.createElement("td");
    bar.className = "bar";
    bar.title = pool.reason || "";
    bar.append(...Array.from({ length: Math.max(pool.live, pool.wanted ?? 0) }, (_, i) => {
      const slot = document.createElement("span");
      slot.className = i < Math.round(pool.busy) ? "busy" : i < pool.live ? "idle" : "coming";
      return slot;
    }));
    tr.append(bar);
    return tr;
  });
  $("pools").replaceChildren(...rows);
  $("scaling").textContent = pools.map((pool) => pool.reason && `${pool.pool}: ${pool.reason}`).filter(Boolean).join("; ");
}

async function showProblem() {
  const id = $("problem").value;
  $("io").hidden = Boolean(id);
  $("statement").hidden = !id;
  if (!id) return;
  const problem = await api(`/problems/${encodeURIComponent(id)}`);
  $("statement-title").textContent = problem.title;
  $("statement-text").textContent = problem.statement;
  const samples = problem.tests.map((test, i) => `Example ${i + 1}\ninput:\n${test.input.trimEnd()}\noutput:\n${test.expected_output.trimEnd()}`);
  $("statement-samples").textContent = samples.join("\n");
  $("statement-hidden").textContent = `${problem.hidden_tests} hidden tests; the first failing test decides the verdict.`;
}

async function refetch() {
  const fields = "token,language_id,status,time,memory,tests,memory_limit_exceeded";
  const { submissions } = await api(`/users/me/submissions?per_page=50&fields=${fields}`);
  $("submissions").replaceChildren();
  for (const submission of submissions.reverse()) show(submission);
}

function connect() {
  if (feed) feed.stop();
  feed = new VerdictFeed({
    url: gatewayUrl(),
    storageKey: `kubejudge.lastEventId.${user}`,
    getToken: async ({ refresh }) => (refresh ? (token = await mintToken(user)) : token),
    onEvent,
    onResync: () => refetch().catch((error) => notice(error.message, true)),
    onPools: showPools,
    onState: ({ state, retryInMs }) => {
      const pill = $("connection");
      pill.dataset.state = state;
      pill.textContent = state === "waiting" ? `reconnecting in ${(retryInMs / 1000).toFixed(1)} s` : state;
    },
  });
  feed.start();
}

async function signedIn() {
  $("whoami").hidden = false;
  $("whoami").textContent = `signed in as ${user}`;
  $("user").value = user;
  $("submit").disabled = false;
  await refetch();
  connect();
}

async function loadChoices() {
  const [langs, problems] = await Promise.all([
    api("/languages"),
    api("/problems").catch(() => []), // problems are optional for the demo
  ]);
  for (const language of langs) {
    languages.set(language.id, language.name);
    $("language").append(new Option(language.name, language.id));
  }
  const python = langs.find((language) => /^Python \(3/.test(language.name));
  if (python) $("language").value = python.id;
  for (const problem of problems) $("problem").append(new Option(problem.title, problem.id));
  sample();
}

function sample() {
  const name = (languages.get(Number($("language").value)) || "").toLowerCase();
  const key = Object.keys(SAMPLES).find((k) => name.startsWith(k === "cpp" ? "c++" : k));
  if (key && (!$("source").value || Object.values(SAMPLES).includes($("source").value))) {
    $("source").value = SAMPLES[key];
  }
  if (!$("stdin").value) $("stdin").value = "world";
}

async function submit() {
  const body = { source_code: $("source").value, language_id: Number($("language").value) };
  if ($("problem").value) body.problem_id = Number($("problem").value);
  else {
    body.stdin = $("stdin").value;
    if ($("expected").value) body.expected_output = $("expected").value;
  }
  $("submit").disabled = true;
  try {
    const { token: submissionToken } = await api("/submissions", { method: "POST", body });
    show({ token: submissionToken, language_id: body.language_id, status: { id: 1, description: "In Queue" } });
    notice(`submitted ${submissionToken}`);
  } catch (error) {
    notice(error.message, true);
  } finally {
    $("submit").disabled = false;
  }
}

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    user = $("user").value.trim();
    token = await mintToken(user);
    await signedIn();
    notice("");
  } catch (error) {
    notice(error.message, true);
  }
});
$("language").addEventListener("change", sample);
$("problem").addEventListener("change", () => showProblem().catch((error) => notice(error.message, true)));
$("submit").addEventListener("click", submit);

loadChoices()
  .then(() => (token && user ? signedIn() : ($("user").value = `dev-${Math.random().toString(36).slice(2, 7)}`)))
  .catch((error) => notice(error.message, true));
