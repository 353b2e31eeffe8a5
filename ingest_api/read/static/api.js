// The read API as the page calls it: the rw key travels only in the Authorization header, and
// every refusal becomes a sentence a person can act on.

export class ApiError extends Error {
  constructor(status, message, retryAfter = null) {
    super(message)
    this.status = status
    this.retryAfter = retryAfter // seconds, from the 503 before the first published run
    this.projectMissing = false // the project does not exist, or is another org's
  }

  // The key or the project is wrong: asking again will not help, logging in again will.
  get badLogin() {
    return this.status === 401 || this.status === 403 || this.projectMissing
  }
}

const PROJECT_MISSING = /^project \d+ not found$/

export function explain(status, detail, projectId) {
  if (status === 401) return `This key was not accepted (${detail}). Log in with a valid read key.`
  if (status === 403) {
    return 'This is a write key. The dashboard reads, so it needs a loom_analytics_rw_ key.'
  }
  if (status === 404 && PROJECT_MISSING.test(detail)) {
    return `Project ${projectId} was not found: it does not exist, or it belongs to another ` +
      "organisation than this key's."
  }
  if (status === 503 && /published/i.test(detail)) {
    return 'Nothing has been published yet: the pipeline has not completed its first run. ' +
      'This page tries again every minute.'
  }
  if (status === 503 && /damaged/i.test(detail)) {
    return `Part of the warehouse is damaged: ${detail}. This page tries again every minute.`
  }
  if (status === 503) return `The warehouse cannot be read right now (${detail}); retrying.`
  return `The API answered ${status}: ${detail}`
}

async function refusal(response, projectId) {
  let detail = response.statusText
  try {
    const body = await response.json()
    detail = typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail ?? body)
  } catch {
    // not JSON: keep the status text
  }
  const retryAfter = Number(response.headers.get('Retry-After')) || null
  const error = new ApiError(response.status, explain(response.status, detail, projectId), retryAfter)
  error.projectMissing = response.status === 404 && PROJECT_MISSING.test(detail)
  return error
}

// Which data an answer reflects, from the headers every read route sends (the shape of the
// `snapshot` field of the bodies and of release.health_changed); null on other routes.
function snapshotOf(headers) {
  const id = headers.get('Loom-Snapshot-Id')
  if (id === null) return null
  return {
    id: Number(id),
    published_at: headers.get('Loom-Published-At'),
    data_as_of: headers.get('Loom-Data-As-Of'),
  }
}

export class Api {
  constructor(key, projectId = null) {
    this.key = key
    this.projectId = projectId
    this.onSnapshot = null // called with the snapshot of every answer that names one
  }

  headers() {
    return { Authorization: `Bearer ${this.key}` }
  }

  async get(path, params = {}, options = {}) {
    const query = new URLSearchParams(
      Object.entries(params).filter(([, value]) => value !== null && value !== undefined && value !== ''),
    )
    const url = query.size ? `${path}?${query}` : path
    let response
    try {
      response = await fetch(url, { headers: this.headers(), cache: 'no-store', ...options })
    } catch (error) {
      if (error.name === 'AbortError') throw error
      throw new ApiError(0, `Cannot reach the API (${error.message}).`)
    }
    if (!response.ok) throw await refusal(response, this.projectId)
    const snapshot = snapshotOf(response.headers)
    if (snapshot) this.onSnapshot?.(snapshot)
    return options.raw ? response : response.json()
  }

  project(path, params) {
    return this.get(`/api/projects/${this.projectId}${path}`, params)
  }

  me() {
    return this.get('/api/keys/me')
  }

  releases(params) {
    return this.project('/releases', params)
  }

  release(version, environment) {
    return this.project(`/releases/${encodeURIComponent(version)}`, { environment })
  }

  trend(interval, environment) {
    return this.project('/health/trend', { interval, environment })
  }

  sessions(params) {
    return this.project('/sessions', params)
  }

  alerts() {
    return this.project('/alerts')
  }

  session(id) {
    return this.project(`/sessions/${encodeURIComponent(id)}`)
  }

  // The response of the SSE route, for the stream reader; its refusals as ApiErrors.
  stream(signal) {
    return this.get(`/api/projects/${this.projectId}/sessions/stream`, {}, {
      raw: true,
      signal,
      headers: { ...this.headers(), Accept: 'text/event-stream' },
    })
  }
}
