{{/* Name of the ConfigMap holding the CMS root (key cms-root.pem). */}}
{{- define "trusted-compute.cmsRootConfigMap" -}}
{{- $g := .Values.global.cmsRoot | default dict -}}
{{- $g.existingConfigMap | default (printf "%s-cms-root" .Release.Name | trunc 63 | trimSuffix "-") -}}
{{- end -}}
