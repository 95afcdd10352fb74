{{/* Names: release "inventory" gives the same names as ops/k8s/base (inventory-web …). */}}
{{- define "inventory.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels; call with (dict "ctx" $ "component" "web"). */}}
{{- define "inventory.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inventory.fullname" .ctx }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end -}}

{{- define "inventory.labels" -}}
{{ include "inventory.selectorLabels" . }}
app.kubernetes.io/part-of: inventory
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/version: {{ include "inventory.tag" .ctx | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "inventory.tag" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if eq $tag "latest" -}}{{- fail "image.tag must be an immutable release tag, never latest" -}}{{- end -}}
{{- $tag -}}
{{- end -}}

{{- define "inventory.image" -}}
{{ printf "%s:%s" .Values.image.repository (include "inventory.tag" .) }}
{{- end -}}

{{- define "inventory.secretName" -}}
{{- .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "inventory.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "inventory.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "inventory.envFrom" -}}
- configMapRef:
    name: {{ include "inventory.fullname" . }}-config
- secretRef:
    name: {{ include "inventory.secretName" . }}
{{- end -}}
