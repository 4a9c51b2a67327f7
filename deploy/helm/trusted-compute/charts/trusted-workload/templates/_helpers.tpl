{{- define "trusted-workload.fullname" -}}
{{- printf "%s-trusted-workload" (.Values.global.fullnameOverride | default .Release.Name) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "trusted-workload.labels" -}}
app.kubernetes.io/name: trusted-workload
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: trusted-compute
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "trusted-workload-%s" .Chart.Version }}
{{- end -}}
