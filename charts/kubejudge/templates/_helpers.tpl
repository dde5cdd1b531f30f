{{/*
Names and labels, defined once (the `helm create` helpers).
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
*/}}
{{- define "kubejudge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubejudge.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kubejudge.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubejudge.labels" -}}
helm.sh/chart: {{ include "kubejudge.chart" . }}
{{ include "kubejudge.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubejudge
{{- end }}

{{/* Only name and instance: a Deployment's selector is immutable, so it must never change. */}}
{{- define "kubejudge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubejudge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kubejudge.operator.selectorLabels" -}}
{{ include "kubejudge.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "kubejudge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-operator" (include "kubejudge.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* An image reference: repository:tag (the chart's appVersion by default), or
repository@sha256:... when the tag is a digest. */}}
{{- define "kubejudge.image" -}}
{{- $image := index .root.Values.images .component -}}
{{- $tag := default .root.Chart.AppVersion $image.tag -}}
{{- printf "%s%s%s" $image.repository (ternary "@" ":" (hasPrefix "sha256:" $tag)) $tag }}
{{- end }}

{{/* Where Grafana's sidecar looks for dashboards: a set namespace, else the release's. */}}
{{- define "kubejudge.dashboardNamespace" -}}
{{- default .Release.Namespace .Values.grafana.dashboards.namespace }}
{{- end }}
