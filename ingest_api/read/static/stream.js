// The project's Server-Sent Events through fetch and a stream reader: EventSource cannot send the
// Authorization header, and the key must not go into the URL. Reconnects after a drop, waiting
// longer each time up to MAX_WAIT_MS; a refused key or project ends it for good.

const FIRST_WAIT_MS = 1000
const MAX_WAIT_MS = 15000

// Splits the byte stream into SSE messages ({event, data, comment}) as lines arrive.
export function sseParser(onMessage) {
  let buffer = ''
  let event = null
  let data = []
  let comments = []
  return (text) => {
    buffer += text
    const lines = buffer.split(/\r\n|\r|\n/)
    buffer = lines.pop()
    for (const line of lines) {
      if (line === '') {
        if (event || data.length || comments.length) {
          onMessage({ event, data: data.length ? data.join('\n') : null, comment: comments.join('\n') || null })
        }
        event = null
        data = []
        comments = []
      } else if (line.startsWith(':')) {
        comments.push(line.slice(1).trim())
      } else {
        const colon = line.indexOf(':')
        const field = colon < 0 ? line : line.slice(0, colon)
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
        if (field === 'event') event = value
        else if (field === 'data') data.push(value)
      }
    }
  }
}

// onEvent(name, data) for each event; onState('connecting' | 'live' | 'waiting' | 'stopped',
// detail); onOpen() each time a connection is subscribed (the caller refetches what it may have
// missed while disconnected).
export function followStream(api, { onEvent, onState, onOpen, onFatal }) {
  const controller = new AbortController()
  let wait = FIRST_WAIT_MS

  async function connectOnce() {
    onState('connecting')
    const response = await api.stream(controller.signal)
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
    const parse = sseParser((message) => {
      if (message.comment === 'subscribed') {
        wait = FIRST_WAIT_MS
        onState('live')
        onOpen()
      }
      if (message.event && message.data !== null) onEvent(message.event, JSON.parse(message.data))
    })
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      parse(value)
    }
  }

  async function run() {
    while (!controller.signal.aborted) {
      try {
        await connectOnce()
      } catch (error) {
        if (controller.signal.aborted) break
        if (error.badLogin) {
          onState('stopped', error.message)
          onFatal(error)
          return
        }
      }
      if (controller.signal.aborted) break
      onState('waiting', Math.round(wait / 1000))
      await new Promise((resolve) => setTimeout(resolve, wait))
      wait = Math.min(wait * 2, MAX_WAIT_MS)
    }
    onState('stopped')
  }

  run()
  return () => controller.abort()
}
