// How numbers and times read on the page. Times are shown in UTC, as the API answers them.

const DASH = '—'

export function percent(value) {
  return value === null || value === undefined ? DASH : `${value.toFixed(2)}%`
}

export function count(value) {
  return value === null || value === undefined ? DASH : value.toLocaleString('en-US')
}

export function utc(iso) {
  return iso ? `${iso.slice(0, 16).replace('T', ' ')}` : DASH
}

// A time of the API: "10:41:07 UTC" today, "2026-11-20 10:41:07 UTC" on another day.
export function clock(iso, now = new Date()) {
  const text = iso.slice(0, 19).replace('T', ' ')
  return `${iso.slice(0, 10) === now.toISOString().slice(0, 10) ? text.slice(11) : text} UTC`
}

// How long ago a time of the API was: "23 s ago", "5 min ago", "3 h ago", "17 days ago".
export function ago(iso, now = Date.now()) {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso.replace(/(\.\d{3})\d+/, '$1'))) / 1000))
  if (seconds < 120) return `${seconds} s ago`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 120) return `${minutes} min ago`
  const hours = Math.floor(minutes / 60)
  return hours < 48 ? `${hours} h ago` : `${Math.floor(hours / 24)} days ago`
}

export function duration(ms) {
  if (ms === null || ms === undefined) return DASH
  const seconds = Math.round(ms / 1000)
  if (seconds < 60) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, '0')}s`
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`
}
