// The project's alert rules and their states (GET /api/projects/{id}/alerts), kept current by the
// live stream's alert.triggered / alert.resolved. A webhook's link (#alert=<id>) marks its rule.

import { utc } from './format.js'

const METRICS = {
  crash_free_session_rate: { label: 'crash-free sessions', unit: '%' },
  crash_free_user_rate: { label: 'crash-free users', unit: '%' },
  error_rate: { label: 'errored sessions', unit: '%' },
  session_count: { label: 'sessions', unit: '' },
}

function condition(rule) {
  const metric = METRICS[rule.metric] ?? { label: rule.metric, unit: '' }
  const sign = rule.threshold_type === 'below' ? '<' : '>'
  const scope = [
    rule.environment ?? 'every environment',
    rule.latest_adopted_release ? 'latest adopted release' : (rule.release ?? 'every release'),
  ].join(', ')
  const warning = rule.warning_threshold === null ? '' : ` (warning ${sign} ${rule.warning_threshold}${metric.unit})`
  return `${metric.label} ${sign} ${rule.critical_threshold}${metric.unit}${warning} over ` +
    `${rule.window_hours} h, ${scope}, at least ${rule.min_sessions} sessions`
}

function cell(text, className) {
  const td = document.createElement('td')
  td.textContent = text
  if (className) td.className = className
  return td
}

function shownValue(rule) {
  if (rule.evaluated_at === null) return 'not judged yet'
  if (rule.value === null) return 'too few sessions to judge'
  const unit = rule.metric === 'session_count' ? '' : '%'
  return `${rule.value}${unit} (${rule.value_release}, ${rule.value_environment})`
}

export function renderAlerts(section, rules, marked) {
  section.hidden = rules.length === 0
  const body = section.querySelector('tbody')
  body.replaceChildren(...rules.map((rule) => {
    const tr = document.createElement('tr')
    tr.id = `alert-${rule.id}`
    tr.dataset.state = rule.state
    if (rule.id === marked) tr.classList.add('changed')
    tr.append(
      cell(rule.name),
      cell(condition(rule)),
      cell(rule.state, `alert-state alert-${rule.state}`),
      cell(shownValue(rule), 'num'),
      cell(rule.state_changed_at ? utc(rule.state_changed_at) : '—'),
    )
    return tr
  }))
}

// The rule a webhook's dashboard link points at, if any.
export function markedRule() {
  return new URLSearchParams(window.location.hash.slice(1)).get('alert')
}
