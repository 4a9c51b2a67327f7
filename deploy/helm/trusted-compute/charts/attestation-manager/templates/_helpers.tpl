{{- define "attestation-manager.fullname" -}}
{{- .Values.fullnameOverride | default (printf "%s-%s" (.Values.global.fullnameOverride | default .Release.Name) (.Values.nameOverride | default "attestation-manager")) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "attestation-manager.labels" -}}
app.kubernetes.io/name: attestation-manager
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: attestation-manager
app.kubernetes.io/part-of: trusted-compute
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "attestation-manager-%s" .Chart.Version }}
{{- end -}}

{{- define "attestation-manager.selectorLabels" -}}
app.kubernetes.io/name: attestation-manager
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "attestation-manager.image" -}}
{{- $repo := .Values.image.repository | default (printf "%s/attestation-manager" .Values.global.image.registry) -}}
{{- $tag := .Values.image.tag | default .Values.global.image.tag | default .Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* The CMS root ConfigMap, or "" when only a pin is given. */}}
{{- define "attestation-manager.cmsRootConfigMap" -}}
{{- $g := .Values.global.cmsRoot | default dict -}}
{{- if $g.existingConfigMap -}}
{{- $g.existingConfigMap -}}
{{- else if $g.certificate -}}
{{- printf "%s-cms-root" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "attestation-manager.cmsRootSHA384" -}}
{{- $g := .Values.global.cmsRoot | default dict -}}
{{- .Values.verifier.cmsRootSHA384 | default $g.sha384 -}}
{{- end -}}

{{- define "attestation-manager.validate" -}}
{{- if not (has .Values.goldenFlavors (list "everyBoot" "firstBoot" "provided")) -}}
{{- fail (printf "attestationManager.goldenFlavors %q: want everyBoot, firstBoot or provided" .Values.goldenFlavors) -}}
{{- end -}}
{{- if not (has (.Values.diskEncryption | default "measured") (list "measured" "claimed")) -}}
{{- fail (printf "attestationManager.diskEncryption %q: want measured or claimed" .Values.diskEncryption) -}}
{{- end -}}
{{- if not (has (.Values.nodeBinding | default "required") (list "required" "reported")) -}}
{{- fail (printf "attestationManager.nodeBinding %q: want required or reported" .Values.nodeBinding) -}}
{{- end -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "attestationManager.replicas > 1 needs attestationManager.leaderElection.enabled: two managers without a Lease would both act on every node" -}}
{{- end -}}
{{- if and (not (include "attestation-manager.cmsRootConfigMap" .)) (not (include "attestation-manager.cmsRootSHA384" .)) -}}
{{- fail "attestationManager needs the CMS root: set global.cmsRoot.certificate, global.cmsRoot.existingConfigMap or global.cmsRoot.sha384 (docs/install.md)" -}}
{{- end -}}
{{- $_ := required "attestationManager.verifier.credentials.existingSecret is required: a Secret with the manager's AAS password (docs/install.md)" .Values.verifier.credentials.existingSecret -}}
{{- $_ := required "attestationManager.nats.credsSecret is required: a Secret with the manager's NATS credentials (docs/install.md)" .Values.nats.credsSecret -}}
{{- if .Values.eim.enabled -}}
{{- $_ := required "attestationManager.eim.address (host:port) is required with eim.enabled" .Values.eim.address -}}
{{- $_ := required "attestationManager.eim.ca.existingConfigMap is required with eim.enabled" .Values.eim.ca.existingConfigMap -}}
{{- $_ := required "attestationManager.eim.token.existingSecret is required with eim.enabled" .Values.eim.token.existingSecret -}}
{{- end -}}
{{- end -}}
