{{/* Names and labels shared by every template. */}}

{{- define "bosun.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "bosun.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "bosun.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "bosun.serviceAccountName" -}}
{{- default (include "bosun.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Where the heartbeat ConfigMap lives: a watched namespace (the operator only sees those). */}}
{{- define "bosun.heartbeatNamespace" -}}
{{- if .Values.watchNamespaces -}}
{{- first .Values.watchNamespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{- define "bosun.storeClaim" -}}
{{- default (printf "%s-store" (include "bosun.fullname" .)) .Values.store.local.existingClaim -}}
{{- end -}}

{{/* Rules across values, which values.schema.json cannot say in words a person reads. */}}
{{- define "bosun.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true: without it every replica would drive every operation" -}}
{{- end -}}
{{- if and (eq .Values.store.type "s3") (not .Values.store.s3.url) -}}
{{- fail "store.type=s3 needs store.s3.url (s3://bucket/prefix)" -}}
{{- end -}}
{{- if and .Values.leaderElection.enabled (le (int .Values.leaderElection.leaseDurationSeconds) (int .Values.leaderElection.renewDeadlineSeconds)) -}}
{{- fail "leaderElection.leaseDurationSeconds must be longer than renewDeadlineSeconds, or a standby could take over before the leader gives up" -}}
{{- end -}}
{{- if and .Values.leaderElection.enabled (le (int .Values.leaderElection.renewDeadlineSeconds) (int .Values.leaderElection.retryPeriodSeconds)) -}}
{{- fail "leaderElection.renewDeadlineSeconds must be longer than retryPeriodSeconds" -}}
{{- end -}}
{{- end -}}
