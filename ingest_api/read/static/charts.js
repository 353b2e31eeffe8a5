// Time charts (uPlot, vendored) and the table's adoption sparklines (plain SVG).

const PALETTE = ['#2563eb', '#d97706', '#059669', '#dc2626', '#7c3aed', '#0891b2', '#65a30d', '#db2777']

export function colour(index) {
  return PALETTE[index % PALETTE.length]
}

const AXIS = { stroke: '#334155', grid: { stroke: '#e2e8f0' }, ticks: { stroke: '#cbd5e1' }, font: '12px system-ui, sans-serif' }

// The API lists only buckets with sessions: a null after each bucket whose next one is missing
// breaks the line there, so a quiet stretch is not drawn as a trend.
export function breakGaps(times, series, stepSeconds) {
  const gapped = { times: [], series: series.map((s) => ({ ...s, values: [] })) }
  times.forEach((time, i) => {
    if (i > 0 && time - times[i - 1] > stepSeconds) {
      gapped.times.push(times[i - 1] + stepSeconds)
      for (const s of gapped.series) s.values.push(null)
    }
    gapped.times.push(time)
    gapped.series.forEach((s, n) => s.values.push(series[n].values[i]))
  })
  return gapped
}

// One chart per element, replaced whenever its data changes: a handful of series of at most a few
// dozen points, so drawing anew costs less than keeping series and axes in step.
export function drawTimeChart(element, { times: bucketTimes, series: bucketSeries, stepSeconds, yLabel, yRange }) {
  const { times, series } = breakGaps(bucketTimes, bucketSeries, stepSeconds)
  element.chart?.destroy()
  element.replaceChildren()
  if (!times.length) {
    element.textContent = 'No sessions in this environment yet.'
    element.chart = null
    return
  }
  const width = Math.max(element.clientWidth, 320)
  const options = {
    width,
    height: 260,
    scales: { x: { time: true }, y: { range: yRange } },
    axes: [
      { ...AXIS },
      { ...AXIS, label: yLabel, labelFont: '12px system-ui, sans-serif', size: 56, values: (_, ticks) => ticks.map((t) => `${+t.toFixed(2)}%`) },
    ],
    series: [
      { value: '{YYYY}-{MM}-{DD} {HH}:{mm}' },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.colour,
        width: 2,
        dash: s.dashed ? [6, 4] : undefined,
        points: { show: true, size: 6 },
        spanGaps: false,
        value: (_, v) => (v === null || v === undefined ? '—' : `${v.toFixed(2)}%`),
      })),
    ],
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
  }
  element.chart = new uPlot(options, [times, ...series.map((s) => s.values)], element)
}

// A rate axis that shows the data's spread rather than 0-100 when every value is near the top.
export function rateRange(series) {
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined)
  if (!values.length) return [0, 100]
  const low = Math.min(...values)
  return [Math.max(0, Math.floor(low - Math.max(1, (100 - low) * 0.2))), 100]
}

// A 90×22 line of percentages (0-100), null points left out.
export function sparkline(values, stroke) {
  const width = 90
  const height = 22
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg')
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`)
  svg.setAttribute('width', width)
  svg.setAttribute('height', height)
  svg.setAttribute('class', 'sparkline')
  svg.setAttribute('aria-hidden', 'true')
  const step = values.length > 1 ? (width - 4) / (values.length - 1) : 0
  const points = values
    .map((v, i) => (v === null ? null : `${(2 + i * step).toFixed(1)},${(height - 2 - (v / 100) * (height - 4)).toFixed(1)}`))
    .filter(Boolean)
  const line = document.createElementNS('http://www.w3.org/2000/svg', points.length > 1 ? 'polyline' : 'circle')
  if (points.length > 1) {
    line.setAttribute('points', points.join(' '))
    line.setAttribute('fill', 'none')
    line.setAttribute('stroke', stroke)
    line.setAttribute('stroke-width', '1.5')
  } else if (points.length === 1) {
    const [x, y] = points[0].split(',')
    line.setAttribute('cx', x)
    line.setAttribute('cy', y)
    line.setAttribute('r', '2')
    line.setAttribute('fill', stroke)
  }
  svg.append(line)
  return svg
}
