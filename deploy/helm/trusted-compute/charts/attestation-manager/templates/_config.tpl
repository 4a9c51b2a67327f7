{{- define "attestation-manager.config" -}}
pollDuration: {{ .Values.pollDuration | toString | quote }}
jitter: {{ .Values.jitter }}
goldenFlavors: {{ .Values.goldenFlavors }}
diskEncryption: {{ .Values.diskEncryption | default "measured" }}
nodeBinding: {{ .Values.nodeBinding | default "required" }}
evictNamespaces: {{ .Values.evictNamespaces | default list | toJson }}
concurrency: {{ .Values.concurrency }}
fleetSize: {{ .Values.fleetSize | default 0 }}
refreshInterval: {{ .Values.refreshInterval }}
leaderElection:
  enabled: {{ .Values.leaderElection.enabled }}
  leaseDuration: {{ .Values.leaderElection.leaseDuration }}
  renewDeadline: {{ .Values.leaderElection.renewDeadline }}
  retryPeriod: {{ .Values.leaderElection.retryPeriod }}
{{- with .Values.maxEvidenceAge }}
maxEvidenceAge: {{ . | toString | quote }}
{{- end }}
verifier:
  url: {{ .Values.verifier.url | default (printf "https://%s-verifier.%s.svc:8443" (.Values.global.fullnameOverride | default .Release.Name) .Release.Namespace) | quote }}
  {{- if include "attestation-manager.cmsRootConfigMap" . }}
  cmsRootFile: /etc/trusted-compute/cms-root/cms-root.pem
  {{- end }}
  {{- with include "attestation-manager.cmsRootSHA384" . }}
  cmsRootSHA384: {{ . | quote }}
  {{- end }}
  username: {{ .Values.verifier.username | quote }}
  passwordFile: /var/run/secrets/trustedcompute.io/aas/password
  timeout: {{ .Values.verifier.timeout }}
nats:
  url: {{ .Values.nats.url | default (printf "tls://%s-verifier-nats.%s.svc:4222" (.Values.global.fullnameOverride | default .Release.Name) .Release.Namespace) | quote }}
  credsFile: /var/run/secrets/trustedcompute.io/nats/creds
{{- if .Values.eim.enabled }}
eim:
  address: {{ .Values.eim.address | quote }}
  caFile: /etc/trusted-compute/eim-ca/ca.crt
  tokenFile: /var/run/secrets/trustedcompute.io/eim/token
  {{- with .Values.eim.serverName }}
  serverName: {{ . | quote }}
  {{- end }}
{{- end }}
kubernetes:
  namespace: {{ .Release.Namespace | quote }}
logLevel: {{ .Values.logLevel }}
metricsAddr: {{ printf ":%v" .Values.metrics.port | quote }}
{{- end -}}
