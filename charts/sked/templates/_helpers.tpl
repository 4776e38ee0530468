{{/* Names and labels. */}}
{{- define "sked.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sked.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "sked.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sked.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sked
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "sked.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sked.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of one component: (dict "root" $ "component" "worker"). */}}
{{- define "sked.componentLabels" -}}
{{ include "sked.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sked.componentSelectorLabels" -}}
{{ include "sked.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "sked.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sked.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sked.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Seconds between SIGTERM and SIGKILL for one service: preStop sleep + drain + margin.
The console has no drain_timeout key: its drain is console.drainSeconds. */}}
{{- define "sked.gracePeriod" -}}
{{- $svc := index .root.Values .component -}}
{{- $drain := ternary $svc.drainSeconds $svc.drainTimeoutSeconds (eq .component "console") -}}
{{- add (int $svc.preStopSleepSeconds) (int $drain) (int .root.Values.terminationGraceMarginSeconds) -}}
{{- end -}}

{{/*
The effective sked configuration as a dict: .Values.config with the chart-managed keys on top.
*/}}
{{- define "sked.configDict" -}}
{{- $v := .Values -}}
{{- $cfg := deepCopy ($v.config | default dict) -}}
{{- /* config.console belongs to the console's own ConfigMap (sked.consoleConfigDict). */ -}}
{{- $_ := unset $cfg "console" -}}
{{- $rd := deepCopy ($v.kafka.rdkafka | default dict) -}}
{{- $_ := set $rd "security.protocol" $v.kafka.securityProtocol -}}
{{- if hasPrefix "SASL_" $v.kafka.securityProtocol -}}
{{- $_ := set $rd "sasl.mechanism" $v.kafka.sasl.mechanism -}}
{{- end -}}
{{- if $v.kafka.tls.existingSecret -}}
{{- $_ := set $rd "ssl.ca.location" (printf "/etc/sked/kafka-tls/%s" $v.kafka.tls.caKey) -}}
{{- if $v.kafka.tls.certKey -}}
{{- $_ := set $rd "ssl.certificate.location" (printf "/etc/sked/kafka-tls/%s" $v.kafka.tls.certKey) -}}
{{- end -}}
{{- if $v.kafka.tls.keyKey -}}
{{- $_ := set $rd "ssl.key.location" (printf "/etc/sked/kafka-tls/%s" $v.kafka.tls.keyKey) -}}
{{- end -}}
{{- end -}}
{{- $managed := dict
  "kafka" (dict "brokers" $v.kafka.brokers "rdkafka" $rd)
  "admin" (dict "listen_addr" (printf "0.0.0.0:%d" (int $v.adminPort)))
  "http" (dict "listen_addr" (printf "0.0.0.0:%d" (int $v.ingest.service.port)))
  "ingest" (dict "drain_timeout" (printf "%ds" (int $v.ingest.drainTimeoutSeconds)))
  "scheduler" (dict "drain_timeout" (printf "%ds" (int $v.scheduler.drainTimeoutSeconds)))
  "worker" (dict "drain_timeout" (printf "%ds" (int $v.worker.drainTimeoutSeconds)))
  "replayer" (dict "drain_timeout" (printf "%ds" (int $v.replayer.drainTimeoutSeconds)) "listen_addr" (printf "0.0.0.0:%d" (int $v.replayer.service.port)))
-}}
{{- $redis := dict "cluster" $v.redis.cluster -}}
{{- if not $v.redis.existingSecret -}}
{{- $_ := set $redis "url" $v.redis.url -}}
{{- end -}}
{{- $_ := set $managed "redis" $redis -}}
{{- $auth := dict "enabled" $v.auth.enabled -}}
{{- if $v.auth.tokensSecret -}}
{{- $_ := set $auth "tokens_file" (printf "/etc/sked/auth/%s" $v.auth.tokensKey) -}}
{{- end -}}
{{- if $v.auth.jwt -}}
{{- $_ := set $auth "jwt" $v.auth.jwt -}}
{{- end -}}
{{- $_ := set $managed "auth" $auth -}}
{{- if and $v.encryption.enabled (not (and $v.encryption.existingSecret $v.encryption.keys $v.encryption.currentKey)) -}}
{{- fail "encryption.enabled needs encryption.existingSecret, encryption.keys and encryption.currentKey" -}}
{{- end -}}
{{- if and $v.encryption.keys (not $v.encryption.existingSecret) -}}
{{- fail "encryption.keys needs encryption.existingSecret (the Secret holding the keys)" -}}
{{- end -}}
{{- if and $v.encryption.currentKey (not (has $v.encryption.currentKey $v.encryption.keys)) -}}
{{- fail "encryption.currentKey must be one of encryption.keys" -}}
{{- end -}}
{{- $keys := dict -}}
{{- range $v.encryption.keys -}}
{{- $_ := set $keys . (dict "file" (printf "/etc/sked/keys/%s" .)) -}}
{{- end -}}
{{- $_ := set $managed "encryption" (dict "enabled" $v.encryption.enabled "current_key" ($v.encryption.currentKey | default "") "keys" $keys) -}}
{{- toYaml (mergeOverwrite $cfg $managed) -}}
{{- end -}}

{{/* A TOML key: bare when it can be, else quoted. */}}
{{- define "sked.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . -}}{{ . }}{{- else -}}{{ toJson . }}{{- end -}}
{{- end -}}

{{/* A TOML scalar or array of scalars. */}}
{{- define "sked.tomlValue" -}}
{{- if kindIs "string" . -}}
{{- toJson . -}}
{{- else if kindIs "bool" . -}}
{{- ternary "true" "false" . -}}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) -}}
{{- if eq (float64 (int64 .)) (float64 .) -}}{{ int64 . }}{{- else -}}{{ . }}{{- end -}}
{{- else if or (kindIs "int" .) (kindIs "int64" .) (kindIs "int32" .) (kindIs "uint64" .) -}}
{{- . -}}
{{- else if kindIs "slice" . -}}
[{{- range $i, $e := . -}}{{- if $i -}}, {{ end -}}{{- include "sked.tomlValue" $e -}}{{- end -}}]
{{- else -}}
{{- fail (printf "config: cannot render %v (%s) as TOML" . (kindOf .)) -}}
{{- end -}}
{{- end -}}

{{/* One TOML table and its sub-tables: (dict "path" (list ...) "table" map). */}}
{{- define "sked.tomlTable" -}}
{{- $path := .path -}}
{{- $table := .table -}}
{{- if $path }}
[{{ range $i, $p := $path }}{{ if $i }}.{{ end }}{{ include "sked.tomlKey" $p }}{{ end }}]
{{- end }}
{{- range $k := keys $table | sortAlpha }}
{{- $val := index $table $k }}
{{- if and (not (kindIs "map" $val)) (not (kindIs "invalid" $val)) }}
{{ include "sked.tomlKey" $k }} = {{ include "sked.tomlValue" $val }}
{{- end }}
{{- end }}
{{- range $k := keys $table | sortAlpha }}
{{- $val := index $table $k }}
{{- if kindIs "map" $val }}
{{ include "sked.tomlTable" (dict "path" (append $path $k) "table" $val) }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "sked.configToml" -}}
# Rendered by the sked Helm chart from .Values.config and the connection values.
{{ include "sked.tomlTable" (dict "path" (list) "table" (include "sked.configDict" . | fromYaml)) }}
{{- end -}}

{{/*
The console's configuration as a dict: only what sked-console reads (admin, log, console), so
its ConfigMap names no Kafka, Redis, auth or encryption setting. The API URLs default to this
release's ingest and replayer Services.
*/}}
{{- define "sked.consoleConfigDict" -}}
{{- $v := .Values -}}
{{- $c := $v.console -}}
{{- $fullname := include "sked.fullname" . -}}
{{- $api := $c.apiUrl -}}
{{- if not $api -}}
{{- if not $v.ingest.enabled -}}
{{- fail "console.apiUrl is required when ingest.enabled is false (no ingest Service for the console to call)" -}}
{{- end -}}
{{- $api = printf "http://%s-ingest.%s.svc:%d" $fullname .Release.Namespace (int $v.ingest.service.port) -}}
{{- end -}}
{{- $dlq := $c.dlqApiUrl -}}
{{- if not $dlq -}}
{{- if not $v.replayer.enabled -}}
{{- fail "console.dlqApiUrl is required when replayer.enabled is false (no replayer Service for the console to call)" -}}
{{- end -}}
{{- $dlq = printf "http://%s-replayer.%s.svc:%d" $fullname .Release.Namespace (int $v.replayer.service.port) -}}
{{- end -}}
{{- $console := deepCopy (dig "console" dict ($v.config | default dict) | default dict) -}}
{{- $_ := set $console "listen_addr" (printf "0.0.0.0:%d" (int $c.service.port)) -}}
{{- $_ := set $console "api_url" $api -}}
{{- $_ := set $console "dlq_api_url" $dlq -}}
{{- $_ := set $console "path_prefix" $c.pathPrefix -}}
{{- $_ := set $console "secure_cookie" $c.secureCookie -}}
{{- $cfg := dict
  "admin" (dict "listen_addr" (printf "0.0.0.0:%d" (int $v.adminPort)))
  "console" $console
-}}
{{- with (dig "log" dict ($v.config | default dict)) -}}
{{- $_ := set $cfg "log" (deepCopy .) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "sked.consoleConfigToml" -}}
# Rendered by the sked Helm chart for sked-console from the console values, config.console and config.log.
{{ include "sked.tomlTable" (dict "path" (list) "table" (include "sked.consoleConfigDict" . | fromYaml)) }}
{{- end -}}

{{/* Environment of every sked container: secrets, RUST_LOG, extra env.
(dict "root" $ "svc" map ["noSecrets" true]); noSecrets (the console): RUST_LOG and extra env only. */}}
{{- define "sked.env" -}}
{{- $v := .root.Values -}}
- name: RUST_LOG
  value: {{ $v.logLevel | quote }}
{{- if not .noSecrets }}
{{- if $v.redis.existingSecret }}
- name: SKED_REDIS__URL
  valueFrom:
    secretKeyRef:
      name: {{ $v.redis.existingSecret }}
      key: {{ $v.redis.urlKey }}
{{- end }}
{{- if hasPrefix "SASL_" $v.kafka.securityProtocol }}
- name: SKED_KAFKA__RDKAFKA__SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.existingSecret is required with a SASL_* securityProtocol" $v.kafka.sasl.existingSecret }}
      key: {{ $v.kafka.sasl.usernameKey }}
- name: SKED_KAFKA__RDKAFKA__SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.kafka.sasl.existingSecret }}
      key: {{ $v.kafka.sasl.passwordKey }}
{{- end }}
{{- if and $v.kafka.tls.existingSecret $v.kafka.tls.keyPasswordKey }}
- name: SKED_KAFKA__RDKAFKA__SSL_KEY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.kafka.tls.existingSecret }}
      key: {{ $v.kafka.tls.keyPasswordKey }}
{{- end }}
{{- end }}
{{- if and .noSecrets $v.console.oidcClientSecret.existingSecret }}
{{- if not (dig "console" "oidc" "" ($v.config | default dict)) }}
{{- fail "console.oidcClientSecret.existingSecret needs config.console.oidc (issuer, client_id, redirect_url)" }}
{{- end }}
- name: SKED_CONSOLE__OIDC__CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $v.console.oidcClientSecret.existingSecret }}
      key: {{ $v.console.oidcClientSecret.key }}
{{- end }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with .svc }}
{{- with .extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Volumes shared by the services and the topics Job: (dict "root" $ "configMap" name
["noSecrets" true]); noSecrets (the console): the ConfigMap and /tmp only. */}}
{{- define "sked.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if not .noSecrets }}
{{- if .root.Values.kafka.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ .root.Values.kafka.tls.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- if .root.Values.auth.tokensSecret }}
- name: auth-tokens
  secret:
    secretName: {{ .root.Values.auth.tokensSecret }}
    defaultMode: 0440
{{- end }}
{{- if .root.Values.encryption.existingSecret }}
- name: encryption-keys
  secret:
    secretName: {{ .root.Values.encryption.existingSecret }}
    defaultMode: 0440
{{- end }}
{{- end }}
{{- end -}}

{{/* Mounts of those volumes: (dict "root" $ ["noSecrets" true]). */}}
{{- define "sked.volumeMounts" -}}
{{- $v := .root.Values -}}
- name: config
  mountPath: /etc/sked/config
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if not .noSecrets }}
{{- if $v.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: /etc/sked/kafka-tls
  readOnly: true
{{- end }}
{{- if $v.auth.tokensSecret }}
- name: auth-tokens
  mountPath: /etc/sked/auth
  readOnly: true
{{- end }}
{{- if $v.encryption.existingSecret }}
- name: encryption-keys
  mountPath: /etc/sked/keys
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}
