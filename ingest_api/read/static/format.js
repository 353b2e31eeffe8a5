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

export function duration(ms) {
  if (ms === null || ms === undefined) return DASH
  const seconds = Math.round(ms / 1000)
  if (seconds < 60) return `${seconds}s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, '0')}s`
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`
}
