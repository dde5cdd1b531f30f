"""The operator role: turn a JudgeCluster into the running system and autoscale its workers.

Named `kubejudge_operator`, never `operator`, which would shadow the standard library.
"""
