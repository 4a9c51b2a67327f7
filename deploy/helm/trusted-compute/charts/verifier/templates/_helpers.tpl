{{- define "verifier.fullname" -}}
{{- .Values.fullnameOverride | default (printf "%s-%s" (.Values.global.fullnameOverride | default .Release.Name) (.Values.nameOverride | default "verifier")) | trunc 58 | trimSuffix "-" -}}
{{- end -}}

{{- define "verifier.labels" -}}
app.kubernetes.io/name: verifier
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: verifier
app.kubernetes.io/part-of: trusted-compute
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "verifier.selectorLabels" -}}
app.kubernetes.io/name: verifier
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "verifier.image" -}}
{{- $repo := .Values.image.repository | default (printf "%s/verifier" .Values.global.image.registry) -}}
{{- $tag := .Values.image.tag | default .Values.global.image.tag | default .Chart.AppVersion -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{/* The Secret and key holding the admin password; fails without one. */}}
{{- define "verifier.adminSecret" -}}
{{- if .Values.admin.existingSecret -}}
{{- .Values.admin.existingSecret -}}
{{- else -}}
{{- $_ := required "verifier.admin.password (or verifier.admin.existingSecret) is required: the verifier has no default administrator password" .Values.admin.password -}}
{{- printf "%s-admin" (include "verifier.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "verifier.externalNATS" -}}
{{- if .Values.nats.external.url }}true{{ end -}}
{{- end -}}

{{/* Every DNS name the TLS certificate must carry. */}}
{{- define "verifier.dnsNames" -}}
{{- $f := include "verifier.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $names := list -}}
{{- range $svc := list $f (printf "%s-nats" $f) -}}
{{- $names = append $names $svc -}}
{{- $names = append $names (printf "%s.%s" $svc $ns) -}}
{{- $names = append $names (printf "%s.%s.svc" $svc $ns) -}}
{{- $names = append $names (printf "%s.%s.svc.cluster.local" $svc $ns) -}}
{{- end -}}
{{- concat $names .Values.dnsNames | uniq | join "," -}}
{{- end -}}

{{/* Problems with the values, reported before anything renders. */}}
{{- define "verifier.validate" -}}
{{- $_ := include "verifier.adminSecret" . -}}
{{- if not (has .Values.database.type (list "sqlite" "postgres")) -}}
{{- fail (printf "verifier.database.type %q: want sqlite or postgres" .Values.database.type) -}}
{{- end -}}
{{- if and (eq .Values.database.type "postgres") (not .Values.database.postgres.existingSecret) -}}
{{- fail "verifier.database.postgres.existingSecret is required with database.type=postgres (a Secret holding the postgres:// URL)" -}}
{{- end -}}
{{- if and (eq .Values.database.type "postgres") (not .Values.keyEncryption.existingSecret) -}}
{{- fail "verifier.keyEncryption.existingSecret is required with database.type=postgres (a Secret holding the key-encryption key; a key generated into the pod's data directory would not outlive it)" -}}
{{- end -}}
{{- if and .Values.nats.external.url (not .Values.nats.external.credsSecret) -}}
{{- fail "verifier.nats.external.credsSecret is required with an external NATS (nats.external.url)" -}}
{{- end -}}
{{- if and (gt (int .Values.replicas) 1) (eq .Values.database.type "sqlite") -}}
{{- fail "verifier.replicas > 1 needs database.type=postgres: SQLite is one file of one process" -}}
{{- end -}}
{{- end -}}

{{/*
The embedded NATS servers of the replicas join one cluster by routes between
the pods (headless Service): with more than one replica and no external NATS.
*/}}
{{- define "verifier.natsCluster" -}}
{{- if and (gt (int .Values.replicas) 1) (not (include "verifier.externalNATS" .)) -}}true{{- end -}}
{{- end -}}

{{/* The route URLs of every replica's embedded NATS server. */}}
{{- define "verifier.natsRoutes" -}}
{{- $fullname := include "verifier.fullname" . -}}
{{- $routes := list -}}
{{- range $i := until (int .Values.replicas) -}}
{{- $routes = append $routes (printf "nats://%s-%d.%s-headless.%s.svc:%d" $fullname $i $fullname $.Release.Namespace (int $.Values.nats.cluster.port)) -}}
{{- end -}}
{{- join "," $routes -}}
{{- end -}}
