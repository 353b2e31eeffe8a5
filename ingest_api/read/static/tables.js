// The releases and recent-sessions tables.

import { sparkline } from './charts.js'
import { count, duration, percent, utc } from './format.js'

// The releases table's columns: the release list's fields and the detail's first and last seen.
const RELEASE_COLUMNS = [
  { key: 'release', label: 'release', text: (r) => r.release },
  { key: 'crash_free_session_rate', label: 'crash-free sessions', num: true, text: (r) => percent(r.crash_free_session_rate) },
  { key: 'crash_free_user_rate', label: 'crash-free users', num: true, text: (r) => percent(r.crash_free_user_rate) },
  { key: 'total_sessions', label: 'sessions', num: true, text: (r) => count(r.total_sessions) },
  { key: 'total_users', label: 'users', num: true, text: (r) => count(r.total_users) },
  { key: 'error_rate', label: 'errored', num: true, text: (r) => percent(r.error_rate) },
  { key: 'avg_duration_ms', label: 'avg duration', num: true, text: (r) => duration(r.avg_duration_ms) },
  { key: 'adoption_rate', label: 'adoption', num: true, text: (r) => percent(r.adoption_rate), spark: true },
  { key: 'current_adoption_rate', label: 'last 24\u00a0h', num: true, text: (r) => percent(r.current_adoption_rate) },
  { key: 'peak_adoption_rate', label: 'peak', num: true, text: (r) => percent(r.peak_adoption_rate) },
  { key: 'adoption_stage', label: 'stage', text: (r) => r.adoption_stage, stage: true },
  { key: 'first_seen', label: 'first seen (UTC)', text: (r) => utc(r.first_seen) },
  { key: 'last_seen', label: 'last seen (UTC)', text: (r) => utc(r.last_seen) },
]

function cell(tag, text, className) {
  const element = document.createElement(tag)
  element.textContent = text
  if (className) element.className = className
  return element
}

// An id or a release name, cut with an ellipsis when long (the whole of it in the title).
function clipped(text, className = '') {
  const td = cell('td', text, `clip ${className}`.trim())
  td.title = text
  return td
}

function compare(a, b) {
  if (a === b) return 0
  if (a === null || a === undefined) return 1 // missing values sort last either way
  if (b === null || b === undefined) return -1
  return typeof a === 'number' ? a - b : String(a).localeCompare(String(b), 'en', { numeric: true })
}

// rows: the releases of one environment; sort: {key, descending}; adoption: release → [percent
// per bucket] for the sparklines; colours: release → colour; onSort(key) when a heading is clicked.
export function renderReleases(table, { rows, sort, adoption, colours, onSort }) {
  const columns = RELEASE_COLUMNS
  const head = table.tHead.rows[0]
  head.replaceChildren(
    ...columns.map((column) => {
      const th = cell('th', column.label, column.num ? 'num' : '')
      th.dataset.key = column.key
      th.tabIndex = 0
      if (sort.key === column.key) th.setAttribute('aria-sort', sort.descending ? 'descending' : 'ascending')
      th.addEventListener('click', () => onSort(column.key))
      th.addEventListener('keydown', (e) => e.key === 'Enter' && onSort(column.key))
      return th
    }),
  )
  const sorted = [...rows].sort((a, b) => {
    const order = compare(a[sort.key], b[sort.key])
    return sort.descending && a[sort.key] != null && b[sort.key] != null ? -order : order
  })
  const rated = rows.filter((r) => r.crash_free_session_rate !== null && r.crash_free_session_rate !== undefined)
  const rates = rated.map((r) => r.crash_free_session_rate)
  // Only a rate below another's is the worst: when all are equal, none is highlighted.
  const worst = Math.min(...rates) < Math.max(...rates) ? Math.min(...rates) : null
  table.tBodies[0].replaceChildren(
    ...sorted.map((row) => {
      const tr = document.createElement('tr')
      tr.dataset.release = row.release
      if (worst !== null && row.crash_free_session_rate === worst) {
        tr.classList.add('worst')
        tr.title = 'Lowest crash-free session rate'
      }
      for (const column of columns) {
        const td = column.key === 'release' ? clipped(row.release) : cell('td', column.text(row), column.num ? 'num' : '')
        td.dataset.key = column.key
        if (column.stage) td.classList.add('stage', `stage-${row.adoption_stage}`)
        if (column.spark && adoption.has(row.release)) {
          td.prepend(sparkline(adoption.get(row.release), colours.get(row.release)))
        }
        tr.append(td)
      }
      return tr
    }),
  )
}

export function renderSessions(table, sessions, onSelect) {
  table.tBodies[0].replaceChildren(
    ...sessions.map((s) => {
      const tr = document.createElement('tr')
      tr.dataset.session = s.id
      tr.tabIndex = 0
      if (s.live) {
        tr.classList.add('live-row')
        tr.title = 'From the live stream: in the warehouse after the next pipeline run'
      }
      tr.append(
        clipped(s.id, 'mono'),
        cell('td', s.status ?? '—', `status status-${s.status}`),
        clipped(s.release ?? '—'),
        cell('td', s.environment ?? '—'),
        cell('td', count(s.error_count), 'num'),
        cell('td', count(s.crash_count), 'num'),
        cell('td', duration(s.duration_ms), 'num'),
        cell('td', utc(s.started_at)),
      )
      tr.addEventListener('click', () => onSelect(s))
      tr.addEventListener('keydown', (e) => e.key === 'Enter' && onSelect(s))
      return tr
    }),
  )
}

const DETAIL_FIELDS = [
  ['id', 'session'], ['status', 'status'], ['release', 'release'], ['environment', 'environment'],
  ['person_id', 'person'], ['platform', 'platform'], ['error_count', 'errors'],
  ['crash_count', 'crashes'], ['duration_ms', 'duration'], ['started_at', 'started (UTC)'],
  ['ended_at', 'ended (UTC)'],
]

export function renderSessionDetail(aside, session, note) {
  const list = document.createElement('dl')
  for (const [key, label] of DETAIL_FIELDS) {
    if (session[key] === undefined) continue
    let value = session[key]
    if (key === 'duration_ms') value = duration(value)
    else if (key.endsWith('_at')) value = utc(value)
    else if (value === null) value = '—'
    list.append(cell('dt', label), cell('dd', String(value)))
  }
  const close = cell('button', 'Close')
  close.type = 'button'
  close.addEventListener('click', () => { aside.hidden = true })
  aside.replaceChildren(cell('h3', 'Session'), ...(note ? [cell('p', note, 'muted')] : []), list, close)
  aside.hidden = false
}
