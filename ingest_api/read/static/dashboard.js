// The release-health dashboard: logs in with an rw key kept in sessionStorage (never in a URL),
// loads the releases, trends and sessions of a project's environment from the read API, and keeps
// them current from the project's live stream.

import { markedRule, renderAlerts } from './alerts.js'
import { Api } from './api.js'
import { colour, drawTimeChart, rateRange } from './charts.js'
import { ago, clock, count, percent, utc } from './format.js'
import { followStream } from './stream.js'
import { renderReleases, renderSessionDetail, renderSessions } from './tables.js'

const STORAGE = { key: 'loom.dashboard.key', project: 'loom.dashboard.project' }
const DEFAULT_ENVIRONMENT = 'production' // opened when the URL names none, if it has sessions
const MAX_BUCKETS = 48 // the adoption chart asks for each bucket's releases: bound the requests
const PARALLEL_REQUESTS = 4
const SESSIONS_SHOWN = 50
const REFRESH_DELAY_MS = 300 // one refetch for a burst of health changes (a run changes several)
const BUCKET_MS = { hour: 3600e3, day: 86400e3, week: 7 * 86400e3 }
const TICK_MS = 1000 // the age of the data shown counts up

const $ = (selector) => document.querySelector(selector)

const state = {
  api: null,
  stopStream: null,
  environment: null,
  environments: [],
  interval: 'day',
  rows: [], // the environment's releases, list and detail fields merged
  sort: { key: 'total_sessions', descending: true },
  buckets: [], // [{start: Date, end: Date}]
  perBucket: [], // per bucket: Map release → windowed health, or null when the env had no sessions
  trend: [],
  selectedReleases: new Set(), // empty: the project's overall rates
  status: '',
  alerts: [], // the project's alert rules with their states
  sessions: [], // from the warehouse
  live: new Map(), // id → session from the stream, not yet in the warehouse
  refreshTimer: null,
  retryTimer: null,
  loads: 0,
  snapshot: null, // the newest published snapshot an answer came from: {id, published_at, data_as_of}
}

function showError(message) {
  const error = $('#error')
  error.textContent = message ?? ''
  error.hidden = !message
}

function setLive(stateName, detail) {
  const live = $('#live')
  live.dataset.state = stateName
  live.textContent = {
    connecting: 'connecting…',
    live: 'live',
    waiting: `disconnected: retrying in ${detail}s`,
    stopped: 'offline',
  }[stateName]
}

// Which data the page shows: from each answer's headers and each release.health_changed.
function showSnapshot(snapshot) {
  if (state.snapshot && snapshot.id < state.snapshot.id) return // an answer from the one before
  state.snapshot = snapshot
  renderDataAsOf()
}

function renderDataAsOf() {
  const holder = $('#data-as-of')
  const shown = state.snapshot
  holder.dataset.snapshot = shown?.id ?? ''
  if (!shown) holder.textContent = ''
  else if (shown.data_as_of) holder.textContent = `data as of ${clock(shown.data_as_of)} (${ago(shown.data_as_of)})`
  else holder.textContent = `published ${clock(shown.published_at)} (${ago(shown.published_at)}); data time unknown`
}

setInterval(renderDataAsOf, TICK_MS)

// ---- login -----------------------------------------------------------------------------------

function showLogin(message) {
  state.stopStream?.()
  state.stopStream = null
  state.api = null
  state.snapshot = null
  renderDataAsOf()
  clearTimeout(state.retryTimer)
  clearTimeout(state.refreshTimer)
  sessionStorage.removeItem(STORAGE.key)
  $('#login').hidden = false
  $('#dashboard').hidden = true
  $('#logout').hidden = true
  $('#project-name').textContent = ''
  setLive('stopped')
  showError(message)
  document.body.dataset.state = 'login'
}

async function open() {
  const key = sessionStorage.getItem(STORAGE.key)
  if (!key) return showLogin()
  const requested = Number(sessionStorage.getItem(STORAGE.project)) || null
  const api = new Api(key)
  api.onSnapshot = showSnapshot
  document.body.dataset.state = 'loading'
  try {
    const me = await api.me()
    api.projectId = requested ?? me.project_id
    $('#project-name').textContent =
      api.projectId === me.project_id ? `${me.project_name} (project ${me.project_id})` : `project ${api.projectId}`
  } catch (error) {
    return error.badLogin ? showLogin(error.message) : fail(error)
  }
  Object.assign(state, { api, environment: null, live: new Map(), selectedReleases: new Set() })
  $('#login').hidden = true
  $('#logout').hidden = false
  if (await reload()) startStream()
}

$('#login').addEventListener('submit', (event) => {
  event.preventDefault()
  const key = $('#key').value.trim()
  const project = $('#project').value.trim()
  // Out of the DOM as soon as it is stored: the page's HTML never holds the key.
  $('#key').value = ''
  sessionStorage.setItem(STORAGE.key, key)
  if (project) sessionStorage.setItem(STORAGE.project, project)
  else sessionStorage.removeItem(STORAGE.project)
  open()
})

$('#logout').addEventListener('click', () => {
  sessionStorage.removeItem(STORAGE.project)
  showLogin()
})

// ---- loading ---------------------------------------------------------------------------------

// Shows the error; a bad key or project goes back to the login, a 503 (nothing published yet)
// or an unreachable API is retried.
function fail(error) {
  if (error.badLogin) return showLogin(error.message)
  showError(error.message)
  document.body.dataset.state = 'error'
  if (error.status === 503 || error.status === 0) {
    clearTimeout(state.retryTimer)
    // Before the project is known (the key's own lookup failed) everything starts over.
    state.retryTimer = setTimeout(async () => {
      if (!state.api) open()
      else if (await reload()) startStream()
    }, (error.retryAfter ?? 60) * 1000)
  }
}

async function inBatches(items, task) {
  const results = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await task(items[index])
    }
  }
  await Promise.all(Array.from({ length: Math.min(PARALLEL_REQUESTS, items.length) }, worker))
  return results
}

// The environment the URL names (#environment=…), else the one already shown, else production,
// else the busiest (the list is sorted by sessions).
function chooseEnvironment(environments) {
  const candidates = [urlEnvironment(), state.environment, DEFAULT_ENVIRONMENT]
  return candidates.find((name) => name && environments.includes(name)) ?? environments[0] ?? null
}

// The choice lives in the URL's fragment: a reload or a shared link opens the same environment,
// and a fragment never reaches the server (nor its logs). The key never goes there.
function urlEnvironment() {
  return new URLSearchParams(location.hash.slice(1)).get('environment')
}

function rememberEnvironment() {
  if (!state.environment || urlEnvironment() === state.environment) return
  const fragment = new URLSearchParams(location.hash.slice(1)) // a webhook's alert=… stays
  fragment.set('environment', state.environment)
  history.replaceState(null, '', `${location.pathname}${location.search}#${fragment}`)
}

function chooseInterval(rows) {
  const chosen = $('#interval').value
  if (chosen !== 'auto') return chosen
  const first = Math.min(...rows.map((r) => Date.parse(r.first_seen)))
  const last = Math.max(...rows.map((r) => Date.parse(r.last_seen)))
  const span = last - first
  if (!(span >= 0) || span <= 3 * BUCKET_MS.day) return 'hour'
  return span <= 120 * BUCKET_MS.day ? 'day' : 'week'
}

async function loadReleases() {
  const { releases } = await state.api.releases()
  const sessionsByEnvironment = new Map()
  for (const r of releases) {
    sessionsByEnvironment.set(r.environment, (sessionsByEnvironment.get(r.environment) ?? 0) + r.total_sessions)
  }
  state.environments = [...sessionsByEnvironment.keys()].sort(
    (a, b) => sessionsByEnvironment.get(b) - sessionsByEnvironment.get(a) || a.localeCompare(b),
  )
  state.environment = chooseEnvironment(state.environments)
  rememberEnvironment()
  const listed = releases.filter((r) => r.environment === state.environment)
  const details = await inBatches(listed, (r) => state.api.release(r.release, state.environment))
  state.rows = listed.map((r, i) => ({ ...r, ...details[i] }))
}

async function loadCharts() {
  state.interval = chooseInterval(state.rows)
  const { trend } = await state.api.trend(state.interval, state.environment)
  state.trend = trend.slice(-MAX_BUCKETS)
  state.buckets = state.trend.map((point) => {
    const start = new Date(point.timestamp)
    return { start, end: new Date(start.getTime() + BUCKET_MS[state.interval]) }
  })
  state.perBucket = await inBatches(state.buckets, async ({ start, end }) => {
    const { releases } = await state.api.releases({
      environment: state.environment,
      start_date: start.toISOString(),
      end_date: end.toISOString(),
    })
    return releases.length ? new Map(releases.map((r) => [r.release, r])) : null
  })
}

async function loadAlerts() {
  state.alerts = (await state.api.alerts()).alerts
}

async function loadSessions() {
  const { sessions } = await state.api.sessions({
    status: state.status, environment: state.environment, limit: SESSIONS_SHOWN,
  })
  state.sessions = sessions
  for (const s of sessions) state.live.delete(s.id)
}

// Everything, from the API. True when it loaded.
async function reload() {
  document.body.dataset.state = 'loading'
  try {
    await loadReleases()
    await Promise.all([loadCharts(), loadSessions(), loadAlerts()])
  } catch (error) {
    fail(error)
    return false
  }
  clearTimeout(state.retryTimer)
  showError(null)
  $('#dashboard').hidden = false // before drawing: the charts take their width from the page
  renderAll()
  state.loads += 1
  document.body.dataset.loads = state.loads
  document.body.dataset.state = 'ready'
  return true
}

// After a burst of release.health_changed: the charts' numbers changed with the rows'.
function scheduleChartRefresh() {
  clearTimeout(state.refreshTimer)
  state.refreshTimer = setTimeout(async () => {
    try {
      await loadCharts()
      await loadSessions()
    } catch (error) {
      return fail(error)
    }
    renderAll()
    state.loads += 1
    document.body.dataset.loads = state.loads
  }, REFRESH_DELAY_MS)
}

// ---- rendering -------------------------------------------------------------------------------

function releaseColours() {
  const names = [...new Set(state.rows.map((r) => r.release))].sort((a, b) =>
    a.localeCompare(b, 'en', { numeric: true }),
  )
  return new Map(names.map((name, i) => [name, colour(i)]))
}

function adoptionSeries() {
  const byRelease = new Map()
  for (const row of state.rows) {
    byRelease.set(
      row.release,
      state.perBucket.map((releases) => (releases === null ? null : (releases.get(row.release)?.adoption_rate ?? 0))),
    )
  }
  return byRelease
}

function renderEnvironments() {
  const select = $('#environment')
  select.replaceChildren(
    ...state.environments.map((name) => {
      const option = document.createElement('option')
      option.value = option.textContent = name
      return option
    }),
  )
  select.value = state.environment ?? ''
}

function renderReleaseFilter(colours) {
  const holder = $('#release-filter')
  const boxes = [...colours.keys()].map((release) => {
    const label = document.createElement('label')
    const box = document.createElement('input')
    box.type = 'checkbox'
    box.value = release
    box.checked = state.selectedReleases.has(release)
    box.addEventListener('change', () => {
      if (box.checked) state.selectedReleases.add(release)
      else state.selectedReleases.delete(release)
      renderHealthChart(colours)
    })
    label.style.color = colours.get(release)
    label.append(box, ` ${release}`)
    return label
  })
  holder.replaceChildren('Releases: ', ...boxes)
  holder.title = 'None checked: every release of the environment'
}

function renderHealthChart(colours) {
  const times = state.buckets.map((b) => b.start.getTime() / 1000)
  const chosen = [...state.selectedReleases].filter((r) => colours.has(r))
  let series
  let caption
  if (!chosen.length) {
    series = [
      { label: 'sessions', colour: '#2563eb', values: state.trend.map((p) => p.crash_free_session_rate) },
      { label: 'users', colour: '#d97706', dashed: true, values: state.trend.map((p) => p.crash_free_user_rate) },
    ]
    const last = state.trend.at(-1)
    caption = last
      ? `${state.environment}, ${state.interval} of ${utc(last.timestamp)}: ${percent(last.crash_free_session_rate)} of ` +
        `sessions and ${percent(last.crash_free_user_rate)} of users crash-free (${count(last.total_sessions)} sessions).`
      : ''
  } else {
    series = chosen.flatMap((release) => [
      { label: `${release} sessions`, colour: colours.get(release), values: state.perBucket.map((m) => m?.get(release)?.crash_free_session_rate ?? null) },
      { label: `${release} users`, colour: colours.get(release), dashed: true, values: state.perBucket.map((m) => m?.get(release)?.crash_free_user_rate ?? null) },
    ])
    const last = state.perBucket.at(-1)
    const bucket = state.buckets.at(-1)
    caption = bucket
      ? `${state.environment}, ${state.interval} of ${utc(bucket.start.toISOString())}: ` +
        chosen
          .map((release) => {
            const health = last?.get(release)
            return health
              ? `${release} ${percent(health.crash_free_session_rate)} of sessions, ${percent(health.crash_free_user_rate)} of users`
              : `${release} no sessions`
          })
          .join(' · ')
      : ''
  }
  $('#health-caption').textContent = caption
  drawTimeChart($('#health-chart .plot'), {
    times, series, stepSeconds: BUCKET_MS[state.interval] / 1000, yLabel: 'crash-free', yRange: rateRange(series),
  })
}

function renderAdoptionChart(colours, adoption) {
  const times = state.buckets.map((b) => b.start.getTime() / 1000)
  const series = state.rows
    .map((r) => r.release)
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
    .map((release) => {
      const row = state.rows.find((r) => r.release === release)
      return { label: `${release} (${row.adoption_stage})`, colour: colours.get(release), values: adoption.get(release) }
    })
  $('#adoption-caption').textContent = state.rows
    .map((r) => `${r.release}: ${r.adoption_stage}, ${percent(r.current_adoption_rate)}`)
    .join(' · ')
  drawTimeChart($('#adoption-chart .plot'), {
    times, series, stepSeconds: BUCKET_MS[state.interval] / 1000, yLabel: 'share of sessions', yRange: [0, 100],
  })
}

function renderReleaseTable(colours, adoption) {
  renderReleases($('#releases'), {
    rows: state.rows,
    sort: state.sort,
    adoption,
    colours,
    onSort: (key) => {
      state.sort = { key, descending: state.sort.key === key ? !state.sort.descending : key !== 'release' }
      renderReleaseTable(colours, adoption)
    },
  })
}

function shownSessions() {
  const live = [...state.live.values()].filter(
    (s) => s.environment === state.environment && (!state.status || s.status === state.status),
  )
  return [...live.reverse(), ...state.sessions]
}

function renderSessionTable() {
  renderSessions($('#sessions'), shownSessions(), selectSession)
}

function renderAll() {
  const colours = releaseColours()
  const adoption = adoptionSeries()
  renderEnvironments()
  renderReleaseTable(colours, adoption)
  renderReleaseFilter(colours)
  renderHealthChart(colours)
  renderAdoptionChart(colours, adoption)
  renderSessionTable()
  renderAlerts($('#alerts'), state.alerts, markedRule())
  $('#updated').textContent = `updated ${new Date().toISOString().slice(11, 19)} UTC`
}

async function selectSession(session) {
  const aside = $('#session-detail')
  try {
    const { session: found } = await state.api.session(session.id)
    renderSessionDetail(aside, found)
  } catch (error) {
    if (error.status === 404 && session.live) {
      renderSessionDetail(aside, session, 'Not in the warehouse yet: it arrived after the last pipeline run.')
    } else {
      renderSessionDetail(aside, { id: session.id }, error.message)
    }
  }
}

// ---- the live stream -------------------------------------------------------------------------

function onSessionEvent(name, data) {
  const id = data.session_id
  const known = state.live.get(id) ?? state.sessions.find((s) => s.id === id)
  if (name === 'session.started') {
    if (data.environment !== state.environment) return
    state.live.set(id, {
      id, live: true, status: 'active', person_id: null, release: data.release,
      environment: data.environment, platform: data.platform, error_count: 0, crash_count: 0,
      duration_ms: null, started_at: data.started_at, ended_at: null,
    })
  } else if (known) {
    Object.assign(known, {
      status: name === 'session.crashed' ? 'crashed' : data.status,
      error_count: data.error_count, crash_count: data.crash_count,
      duration_ms: data.duration_ms, ended_at: data.ended_at,
    })
  } else {
    // An end whose start this page did not see: an end names no environment, so it waits for
    // the pipeline run that brings the session into the warehouse.
    return
  }
  renderSessionTable()
}

function onHealthChanged(data) {
  if (data.snapshot) showSnapshot(data.snapshot)
  if (data.environment !== state.environment) {
    if (!state.environments.includes(data.environment)) scheduleReload()
    return
  }
  const index = state.rows.findIndex((r) => r.release === data.release)
  if (index < 0) state.rows.push(data)
  else state.rows[index] = { ...state.rows[index], ...data }
  const colours = releaseColours()
  renderReleaseTable(colours, adoptionSeries())
  document.querySelector(`#releases tr[data-release="${CSS.escape(data.release)}"]`)?.classList.add('changed')
  scheduleChartRefresh()
}

// A rule changed state: its row shows the new state at once, then the list is read again.
async function onAlert(data) {
  const rule = state.alerts.find((r) => r.id === data.rule.id)
  if (rule) Object.assign(rule, { state: data.state, value: data.value })
  renderAlerts($('#alerts'), state.alerts, data.rule.id)
  try {
    await loadAlerts()
  } catch (error) {
    return fail(error)
  }
  renderAlerts($('#alerts'), state.alerts, data.rule.id)
}

function scheduleReload() {
  clearTimeout(state.refreshTimer)
  state.refreshTimer = setTimeout(reload, REFRESH_DELAY_MS)
}

function startStream() {
  if (state.stopStream) return
  let opened = 0
  state.stopStream = followStream(state.api, {
    onState: setLive,
    // A reconnect may have missed events: fetch everything again.
    onOpen: () => { if (opened++ > 0) scheduleReload() },
    onFatal: fail,
    onEvent: (name, data) => {
      if (name.startsWith('session.')) onSessionEvent(name, data)
      else if (name === 'release.health_changed') onHealthChanged(data)
      else if (name.startsWith('alert.')) onAlert(data)
      else if (name === 'stream.lagged') scheduleReload()
    },
  })
}

// ---- controls --------------------------------------------------------------------------------

$('#environment').addEventListener('change', (event) => {
  state.environment = event.target.value
  rememberEnvironment()
  state.selectedReleases.clear()
  reload()
})
// Back, forward or an edited URL naming another environment.
window.addEventListener('hashchange', () => {
  if (!state.api || !urlEnvironment() || urlEnvironment() === state.environment) return
  state.selectedReleases.clear()
  reload()
})
$('#interval').addEventListener('change', () => reload())
$('#status-filter').addEventListener('click', async (event) => {
  const button = event.target.closest('button')
  if (!button) return
  state.status = button.dataset.status
  for (const b of $('#status-filter').querySelectorAll('button')) b.setAttribute('aria-pressed', String(b === button))
  try {
    await loadSessions()
  } catch (error) {
    return fail(error)
  }
  renderSessionTable()
})

let resizeTimer = null
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer)
  resizeTimer = setTimeout(() => state.api && state.rows.length && renderAll(), 200)
})

open()
