{{- define "trust-agent.fullname" -}}
{{- .Values.fullnameOverride | default (printf "%s-%s" (.Values.global.fullnameOverride | default .Release.Name) (.Values.nameOverride | default "trust-agent")) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "trust-agent.labels" -}}
app.kubernetes.io/name: trust-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: trust-agent
app.kubernetes.io/part-of: trusted-compute
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "trust-agent-%s" .Chart.Version }}
{{- end -}}

{{- define "trust-agent.selectorLabels" -}}
app.kubernetes.io/name: trust-agent
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "trust-agent.image" -}}
{{- $repo := .Values.image.repository | default (printf "%s/trust-agent" .Values.global.image.registry) -}}
{{- $tag := .Values.image.tag | default .Values.global.image.tag | default .Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{- define "trust-agent.cmsRootConfigMap" -}}
{{- $g := .Values.global.cmsRoot | default dict -}}
{{- if $g.existingConfigMap -}}
{{- $g.existingConfigMap -}}
{{- else if $g.certificate -}}
{{- printf "%s-cms-root" (.Values.global.fullnameOverride | default .Release.Name) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- fail "global.cmsRoot.certificate or global.cmsRoot.existingConfigMap is required by the trust agent: it trusts the bus only through the CMS root (docs/install.md)" -}}
{{- end -}}
{{- end -}}
