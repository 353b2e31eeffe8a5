// node drive.mjs <page URL> <scenario JSON>: opens the page in headless Chromium with
// window.scenario set, and prints as JSON every request it made to the scenario's API (method,
// URL, Content-Type, status) once they have all been answered, and any error the page raised.
import { chromium } from 'playwright-core'

const [pageUrl, scenarioJson] = process.argv.slice(2)
const scenario = JSON.parse(scenarioJson)
const apiOrigin = scenario.api
// Done once nothing was sent for this long; posthog-js before 1.1xx flushes its queue every 3 s.
const QUIET_MS = scenario.quietMs ?? 1000
const TIMEOUT_MS = 30000

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})
const requests = []
const errors = []
let inFlight = 0
let lastActivity = Date.now()
try {
  const page = await browser.newPage()
  await page.addInitScript((value) => { window.scenario = value }, scenario)
  page.on('pageerror', (error) => errors.push(String(error)))
  page.on('request', (request) => {
    if (!request.url().startsWith(apiOrigin)) return
    inFlight += 1
    lastActivity = Date.now()
  })
  const settle = async (request, status) => {
    if (!request.url().startsWith(apiOrigin)) return
    const headers = await request.allHeaders()
    requests.push({ method: request.method(), url: request.url(), contentType: headers['content-type'] ?? null, status })
    inFlight -= 1
    lastActivity = Date.now()
  }
  page.on('requestfinished', async (request) => settle(request, (await request.response())?.status() ?? null))
  page.on('requestfailed', (request) => settle(request, request.failure()?.errorText ?? 'failed'))
  await page.goto(pageUrl)
  await page.waitForFunction(() => window.scenarioDone === true, null, { timeout: TIMEOUT_MS })
  lastActivity = Date.now() // the SDK sends its queue a flush interval later
  const deadline = Date.now() + TIMEOUT_MS
  while (inFlight > 0 || Date.now() - lastActivity < QUIET_MS) {
    if (Date.now() > deadline) throw new Error(`requests still in flight after ${TIMEOUT_MS} ms`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
} finally {
  await browser.close()
}
console.log(JSON.stringify({ requests, errors }))
