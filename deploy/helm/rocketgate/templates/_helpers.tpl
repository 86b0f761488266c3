{{/* Names and labels. */}}
{{- define "rocketgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rocketgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "rocketgate.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "rocketgate.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rocketgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rocketgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rocketgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "rocketgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "rocketgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rocketgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rocketgate.secretName" -}}
{{- default (include "rocketgate.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "rocketgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Where the Secret's keys appear as files (provider.client_secret_file and friends). */}}
{{- define "rocketgate.secretDir" -}}/var/run/secrets/rocketgate{{- end -}}

{{/*
The cookie secret of a chart-made Secret: the value given, else the one already in the
cluster (so upgrades log nobody out), else 32 fresh random bytes. Stored back into .Values so
that secret.yaml and the checksum/secret annotation see the same value within one render.
*/}}
{{- define "rocketgate.cookieSecret" -}}
{{- if not .Values.secrets.cookieSecret -}}
{{- $value := "" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "rocketgate.fullname" .) -}}
{{- if and $existing $existing.data (hasKey $existing.data "cookie-secret") -}}
{{- $value = index $existing.data "cookie-secret" | b64dec -}}
{{- else -}}
{{- $value = randBytes 32 -}}
{{- end -}}
{{- $_ := set .Values.secrets "cookieSecret" $value -}}
{{- end -}}
{{- .Values.secrets.cookieSecret -}}
{{- end -}}

{{/*
The configuration: .Values.config with the keys this chart owns laid over it (listen port,
metrics port, secret files, session store), as a dict.
*/}}
{{- define "rocketgate.configDict" -}}
{{- $dir := include "rocketgate.secretDir" . -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $provider := dict "client_secret_file" (printf "%s/client-secret" $dir) -}}
{{- $cookie := dict "secret_file" (printf "%s/cookie-secret" $dir) -}}
{{- $session := dict "store" .Values.sessionStorage.type -}}
{{- if .Values.sessionStorage.cacheTtl -}}
{{- $_ := set $session "cache_ttl" .Values.sessionStorage.cacheTtl -}}
{{- end -}}
{{- if eq .Values.sessionStorage.type "redis" -}}
{{- $r := .Values.sessionStorage.redis -}}
{{- if $r.clusterNodes -}}
{{- $_ := set $session "redis_cluster_nodes" $r.clusterNodes -}}
{{- else if $r.sentinels -}}
{{- $_ := set $session "redis_sentinels" $r.sentinels -}}
{{- $_ := set $session "redis_sentinel_master" (required "sessionStorage.redis.sentinelMaster is required with sentinels" $r.sentinelMaster) -}}
{{- else -}}
{{- $_ := set $session "redis_url_file" (printf "%s/redis-url" $dir) -}}
{{- end -}}
{{- if or $r.password $r.passwordInSecret -}}
{{- $_ := set $session "redis_password_file" (printf "%s/redis-password" $dir) -}}
{{- end -}}
{{- end -}}
{{- $managed := dict "listen" (printf "0.0.0.0:%d" (int .Values.containerPort)) "provider" $provider "cookie" $cookie "session" $session -}}
{{- if .Values.metrics.enabled -}}
{{- $_ := set $managed "metrics_listen" (printf "0.0.0.0:%d" (int .Values.metrics.port)) -}}
{{- end -}}
{{- if .Values.admin.enabled -}}
{{- $_ := set $managed "admin" (dict "token_file" (printf "%s/admin-token" $dir)) -}}
{{- end -}}
{{- toYaml (mergeOverwrite $cfg $managed) -}}
{{- end -}}

{{/*
A dict as TOML. Helm's toToml turns every number into a float ("5.0") and sorts tables
before nothing; this writes integers as integers, top-level keys before tables, and strings
as JSON strings (valid TOML basic strings). Call with (dict "table" $dict "prefix" "").
*/}}
{{- define "rocketgate.toml" -}}
{{- $table := .table -}}
{{- $prefix := .prefix -}}
{{- range $key := keys $table | sortAlpha -}}
{{- $v := index $table $key -}}
{{- if not (kindIs "map" $v) -}}
{{- if kindIs "slice" $v -}}
{{ $key }} = [{{ range $i, $item := $v }}{{ if $i }}, {{ end }}{{ include "rocketgate.tomlScalar" $item }}{{ end }}]
{{ else if not (kindIs "invalid" $v) -}}
{{ $key }} = {{ include "rocketgate.tomlScalar" $v }}
{{ end -}}
{{- end -}}
{{- end -}}
{{- range $key := keys $table | sortAlpha -}}
{{- $v := index $table $key -}}
{{- if kindIs "map" $v -}}
{{- $name := ternary $key (printf "%s.%s" $prefix $key) (eq $prefix "") }}
[{{ $name }}]
{{ include "rocketgate.toml" (dict "table" $v "prefix" $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "rocketgate.tomlScalar" -}}
{{- if kindIs "string" . -}}{{ toJson . }}
{{- else if kindIs "bool" . -}}{{ . }}
{{- else if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}{{ int64 . }}
{{- else -}}{{ . }}
{{- end -}}
{{- end -}}

{{/* shutdown_delay + shutdown_timeout in seconds, when both are plain "<n>s" (else 0). */}}
{{- define "rocketgate.shutdownBudget" -}}
{{- $d := toString (default "5s" .Values.config.shutdown_delay) -}}
{{- $t := toString (default "30s" .Values.config.shutdown_timeout) -}}
{{- if and (regexMatch "^[0-9]+s$" $d) (regexMatch "^[0-9]+s$" $t) -}}
{{- add (trimSuffix "s" $d | atoi) (trimSuffix "s" $t | atoi) -}}
{{- else -}}0{{- end -}}
{{- end -}}

{{/* The rocketgate container; restartPolicy Always when it is a native sidecar. */}}
{{- define "rocketgate.container" -}}
- name: rocketgate
  image: {{ include "rocketgate.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if and (eq .Values.mode "sidecar") .Values.sidecar.native }}
  restartPolicy: Always
  {{- end }}
  args: ["--config", "/etc/rocketgate/rocketgate.toml"]
  env:
    # Optional extra cookie keys (comma-separated) that open but never seal cookies: the
    # rotation procedure in docs/deploy.md. Absent key: variable not set.
    - name: ROCKETGATE_COOKIE__SECRETS
      valueFrom:
        secretKeyRef:
          name: {{ include "rocketgate.secretName" . }}
          key: cookie-extra-secrets
          optional: true
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: http
      containerPort: {{ .Values.containerPort }}
      protocol: TCP
    {{- if .Values.metrics.enabled }}
    - name: metrics
      containerPort: {{ .Values.metrics.port }}
      protocol: TCP
    {{- end }}
  startupProbe:
    httpGet:
      path: /ping
      port: http
    {{- toYaml .Values.probes.startup | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /ping
      port: http
    {{- toYaml .Values.probes.liveness | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /ready
      port: http
    {{- toYaml .Values.probes.readiness | nindent 4 }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: rocketgate-config
      mountPath: /etc/rocketgate
      readOnly: true
    - name: rocketgate-secrets
      mountPath: {{ include "rocketgate.secretDir" . }}
      readOnly: true
{{- end -}}
