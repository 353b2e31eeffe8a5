// node drive_dashboard.mjs: one headless Chromium page, driven by the test one command at a time.
// Each stdin line is a JSON command, answered by one stdout line: {"ok": result} or {"error": msg}.
//   {"op": "goto", "url": ...}                    open a page
//   {"op": "fill", "selector": ..., "value": ...}  type into a field
//   {"op": "click", "selector": ...}
//   {"op": "wait", "until": "<JS expression>", "timeout": ms}  until it is truthy in the page
//   {"op": "eval", "expression": "<JS expression>"}            its JSON value
//   {"op": "screenshot", "path": ...}             the full page, as PNG
//   {"op": "html"}                                the page's HTML as it is now
//   {"op": "log"}                                 every URL requested and every console line so far
// playwright-core comes from the browser tests' own npm install (tests/ingest_api/utils/browser).
import { createRequire } from 'node:module'
import readline from 'node:readline'

const require = createRequire(new URL('./package.json', import.meta.url))
const { chromium } = require('playwright-core')

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // A closed network: nothing but the page's own origin is reachable, and nothing else is tried.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})
// bypassCSP: the page's policy forbids evaluating strings, which is how the test reads the page.
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, bypassCSP: true })
const requested = []
const consoleLines = []
const pageErrors = []
page.on('request', (request) => requested.push(request.url()))
page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`))
page.on('pageerror', (error) => pageErrors.push(String(error)))

async function run(command) {
  switch (command.op) {
    case 'goto':
      await page.goto(command.url)
      return null
    case 'fill':
      await page.fill(command.selector, command.value)
      return null
    case 'click':
      await page.click(command.selector)
      return null
    case 'wait':
      await page.waitForFunction(command.until, null, { timeout: command.timeout ?? 30000, polling: 100 })
      return null
    case 'eval':
      return page.evaluate(command.expression)
    case 'screenshot':
      await page.screenshot({ path: command.path, fullPage: true })
      return null
    case 'html':
      return page.content()
    case 'log':
      return { requested, console: consoleLines, errors: pageErrors }
    default:
      throw new Error(`unknown op ${command.op}`)
  }
}

const lines = readline.createInterface({ input: process.stdin })
try {
  for await (const line of lines) {
    if (!line.trim()) continue
    let answer
    try {
      answer = { ok: (await run(JSON.parse(line))) ?? null }
    } catch (error) {
      answer = { error: String(error.message ?? error) }
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`)
  }
} finally {
  await browser.close()
}
