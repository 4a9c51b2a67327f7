{{/* Name of the ConfigMap holding the CMS root (key cms-root.pem). */}}
{{- define "trusted-compute.cmsRootConfigMap" -}}
{{- $g := .Values.global.cmsRoot | default dict -}}
{{- $g.existingConfigMap | default (printf "%s-cms-root" (.Values.global.fullnameOverride | default .Release.Name) | trunc 63 | trimSuffix "-") -}}
{{- end -}}

{{/* The verifier's object name, as its subchart computes it (fullnameOverride, nameOverride). */}}
{{- define "trusted-compute.verifierFullname" -}}
{{- include "verifier.fullname" (dict "Values" .Values.verifier "Release" .Release) -}}
{{- end -}}

{{/*
The trust agent and the attestation manager find the verifier at
<release>-verifier by default (<global.fullnameOverride>-verifier when set): they cannot see the verifier's values. When its
name is overridden, the URLs they use must be given.
*/}}
{{- define "trusted-compute.validate" -}}
{{- $prefix := (.Values.global.fullnameOverride | default .Release.Name) -}}
{{- $v := printf "%s-verifier" $prefix -}}
{{- if .Values.verifier.enabled -}}
{{- $v = include "trusted-compute.verifierFullname" . -}}
{{- end -}}
{{- if ne $v (printf "%s-verifier" $prefix) -}}
{{- $missing := list -}}
{{- if and .Values.trustAgent.enabled (not .Values.trustAgent.nats.url) -}}
{{- $missing = append $missing "trustAgent.nats.url" -}}
{{- end -}}
{{- if .Values.attestationManager.enabled -}}
{{- if not .Values.attestationManager.verifier.url -}}
{{- $missing = append $missing "attestationManager.verifier.url" -}}
{{- end -}}
{{- if not .Values.attestationManager.nats.url -}}
{{- $missing = append $missing "attestationManager.nats.url" -}}
{{- end -}}
{{- end -}}
{{- with $missing -}}
{{- fail (printf "the verifier is named %s (verifier.fullnameOverride or nameOverride): set %s to its Services (https://%s.%s.svc:%v, tls://%s-nats.%s.svc:%v)" $v (join ", " .) $v $.Release.Namespace $.Values.verifier.service.port $v $.Release.Namespace $.Values.verifier.nats.port) -}}
{{- end -}}
{{- end -}}
{{- end -}}
