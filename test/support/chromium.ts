/**
 * A headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for the dashboard's
 * browser tests: start it, open a page, evaluate in it, click and type as a user would (input
 * events at the element's position, not `element.click()`), upload a file, take screenshots.
 *
 * Chromium makes background requests of its own (component updates, safe browsing, field trials):
 * the flags switch off what they can, and the callers run it in a loopback-only network namespace
 * (test/support/go_cluster.ts's `netnsTest`), so nothing leaves the machine either way.
 *
 * The client is a few dozen lines over Deno's WebSocket: one browser connection, one page
 * session (`Target.attachToTarget` with `flatten`), commands matched to answers by id.
 *
 * @example
 * ```ts
 * const browser = await startChromium()
 * try {
 *   const page = await browser.newPage()
 *   await page.goto('http://127.0.0.1:9094/ui#pins')
 *   await page.type('#pin-cid', cid)
 *   await page.click('#pin-submit')
 *   await page.waitFor(`document.querySelector('[data-cid="${cid}"]')`, 30_000)
 *   await page.screenshot('docs/ui/pins.png')
 * } finally {
 *   await browser.close()
 * }
 * ```
 */
import { join } from 'node:path'
import { Processes } from '../../bench/process.ts'

/** Where Debian puts the browser itself (/usr/bin/chromium is a wrapper script that may not exec). */
const CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium', '/usr/bin/chromium-browser']

/** The flags of every run: headless, no sandbox (root in a container), no background traffic. */
const FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-sync',
  '--disable-breakpad',
  '--disable-domain-reliability',
  '--disable-client-side-phishing-detection',
  '--disable-features=Translate,OptimizationHints,MediaRouter,CertificateTransparencyComponentUpdater',
  '--no-first-run',
  '--no-default-browser-check',
  '--no-pings',
  '--metrics-recording-only',
  '--password-store=basic',
  '--use-mock-keychain',
  '--mute-audio',
  '--hide-scrollbars',
  '--remote-debugging-port=0',
]

/** The browser binary: $CHROMIUM_BIN or Debian's; a clear error when there is none. */
export function findChromium(): string {
  const env = Deno.env.get('CHROMIUM_BIN')
  for (const p of env ? [env] : CANDIDATES) {
    try {
      if (Deno.statSync(p).isFile) return p
    } catch { /* next */ }
  }
  throw new Error(
    `no Chromium found (${
      env ? `CHROMIUM_BIN=${env}` : CANDIDATES.join(', ')
    }): install Debian's with \`apt-get install -y chromium\``,
  )
}

interface CdpMessage {
  id?: number
  method?: string
  params?: Record<string, unknown>
  result?: Record<string, unknown>
  error?: { code: number; message: string }
  sessionId?: string
}

/** One DevTools connection: commands by id, events by method. */
class Cdp {
  #ws: WebSocket
  #next = 1
  #pending = new Map<
    number,
    { resolve(v: Record<string, unknown>): void; reject(e: Error): void }
  >()
  #listeners = new Set<(m: CdpMessage) => void>()
  #closed = false

  private constructor(ws: WebSocket) {
    this.#ws = ws
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data as string) as CdpMessage
      if (m.id !== undefined) {
        const p = this.#pending.get(m.id)
        this.#pending.delete(m.id)
        if (m.error) p?.reject(new Error(`CDP: ${m.error.message} (${m.error.code})`))
        else p?.resolve(m.result ?? {})
        return
      }
      for (const l of this.#listeners) l(m)
    }
    ws.onclose = () => {
      this.#closed = true
      for (const p of this.#pending.values()) p.reject(new Error('CDP: the browser went away'))
      this.#pending.clear()
    }
  }

  static connect(url: string): Promise<Cdp> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url)
      ws.onopen = () => resolve(new Cdp(ws))
      ws.onerror = (ev) =>
        reject(new Error(`cannot connect to ${url}: ${(ev as ErrorEvent).message}`))
    })
  }

  send(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<Record<string, unknown>> {
    if (this.#closed) return Promise.reject(new Error(`CDP: closed (${method})`))
    const id = this.#next++
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      this.#ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }))
    })
  }

  on(l: (m: CdpMessage) => void): () => void {
    this.#listeners.add(l)
    return () => this.#listeners.delete(l)
  }

  close() {
    if (!this.#closed) this.#ws.close()
  }
}

/** A tab. */
export interface Page {
  /** Opens a URL and resolves once its load event fired. */
  goto(url: string, timeoutMs?: number): Promise<void>
  /** Evaluates an expression (awaiting a promise) and returns its JSON value. */
  evaluate<T = unknown>(expression: string): Promise<T>
  /** Polls an expression until it is truthy; the error names it and the page's errors. */
  waitFor<T = unknown>(expression: string, timeoutMs: number): Promise<T>
  /** A mouse click at the middle of the first element the selector matches. */
  click(selector: string): Promise<void>
  /** Focuses the element, selects its text and types over it. */
  type(selector: string, text: string): Promise<void>
  /** Picks a file for an `<input type=file>`. */
  setFile(selector: string, path: string): Promise<void>
  /** Sends these headers with every request of the page (e.g. Authorization). */
  setHeaders(headers: Record<string, string>): Promise<void>
  /** The viewport's (or the whole page's) PNG written to `path`. */
  screenshot(path: string, opts?: { fullPage?: boolean }): Promise<void>
  /** Uncaught exceptions and console errors the page reported. */
  readonly errors: string[]
}

/** A running browser. */
export interface Chromium {
  newPage(opts?: { width?: number; height?: number }): Promise<Page>
  /** Closes the browser, kills it by PID if it lingers, removes its profile. Idempotent. */
  close(): Promise<void>
}

/**
 * Starts a headless Chromium with a fresh profile (see the module comment). It runs through
 * bench/process.ts's registry like every process the tests start: output in a log file (whose
 * tail an error quotes), stopped by its PID.
 */
export async function startChromium(
  opts: { bin?: string; timeoutMs?: number } = {},
): Promise<Chromium> {
  const bin = opts.bin ?? findChromium()
  const dir = await Deno.makeTempDir({ prefix: 'chromium-' })
  await Deno.mkdir(join(dir, 'logs'))
  const procs = new Processes(join(dir, 'logs'))
  const proc = procs.start('chromium', [
    bin,
    ...FLAGS,
    `--user-data-dir=${join(dir, 'profile')}`,
    'about:blank',
  ])
  let cdp: Cdp | undefined
  let closing: Promise<void> | undefined
  const close = () =>
    closing ??= (async () => {
      if (cdp) {
        await cdp.send('Browser.close').catch(() => {})
        cdp.close()
      }
      await proc.stop(5000)
      await Deno.remove(dir, { recursive: true }).catch(() => {})
    })()
  try {
    const [, wsUrl] = await proc.waitForLog(
      /DevTools listening on (ws:\/\/\S+)/,
      opts.timeoutMs ?? 30_000,
    )
    cdp = await Cdp.connect(wsUrl)
  } catch (err) {
    await close()
    throw err
  }
  const browser = cdp
  return {
    close,
    async newPage(p = {}) {
      const { targetId } = await browser.send('Target.createTarget', { url: 'about:blank' })
      const { sessionId } = await browser.send('Target.attachToTarget', {
        targetId,
        flatten: true,
      }) as { sessionId: string }
      return await openPage(browser, sessionId, p.width ?? 1280, p.height ?? 860)
    },
  }
}

async function openPage(cdp: Cdp, sessionId: string, width: number, height: number): Promise<Page> {
  const send = (m: string, p: Record<string, unknown> = {}) => cdp.send(m, p, sessionId)
  const errors: string[] = []
  const loads: (() => void)[] = []
  cdp.on((m) => {
    if (m.sessionId !== sessionId) return
    if (m.method === 'Page.loadEventFired') loads.splice(0).forEach((f) => f())
    if (m.method === 'Runtime.exceptionThrown') {
      const d =
        (m.params as { exceptionDetails: { text: string; exception?: { description?: string } } })
          .exceptionDetails
      errors.push(d.exception?.description ?? d.text)
    }
    if (m.method === 'Runtime.consoleAPICalled') {
      const p = m.params as { type: string; args: { value?: unknown; description?: string }[] }
      if (p.type === 'error') {
        errors.push(p.args.map((a) => a.description ?? String(a.value)).join(' '))
      }
    }
  })
  await send('Page.enable')
  await send('Runtime.enable')
  await send('Network.enable')
  await send('Emulation.setDeviceMetricsOverride', {
    width,
    height,
    deviceScaleFactor: 1,
    mobile: false,
  })

  const evaluate = async <T>(expression: string): Promise<T> => {
    const r = await send('Runtime.evaluate', {
      expression,
      awaitPromise: true,
      returnByValue: true,
    }) as {
      result: { value?: T }
      exceptionDetails?: { text: string; exception?: { description?: string } }
    }
    if (r.exceptionDetails) {
      const d = r.exceptionDetails
      throw new Error(
        `in the page: ${d.exception?.description ?? d.text} (evaluating ${expression})`,
      )
    }
    return r.result.value as T
  }

  const center = async (selector: string) => {
    const box = await evaluate<{ x: number; y: number } | null>(`(() => {
      const e = document.querySelector(${JSON.stringify(selector)})
      if (!e) return null
      e.scrollIntoView({ block: 'center' })
      const r = e.getBoundingClientRect()
      return { x: r.left + r.width / 2, y: r.top + r.height / 2 }
    })()`)
    if (!box) throw new Error(`no element matches ${selector}`)
    return box
  }

  return {
    errors,
    async goto(url, timeoutMs = 30_000) {
      const loaded = new Promise<void>((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`${url} did not load in ${timeoutMs} ms`)),
          timeoutMs,
        )
        loads.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
      const r = await send('Page.navigate', { url }) as { errorText?: string; loaderId?: string }
      if (r.errorText) throw new Error(`cannot open ${url}: ${r.errorText}`)
      if (r.loaderId === undefined) {
        // Only the fragment changed: no load event comes.
        loads.splice(0).forEach((f) => f())
      }
      await loaded
    },
    evaluate,
    async waitFor<T>(expression: string, timeoutMs: number): Promise<T> {
      const deadline = Date.now() + timeoutMs
      let last: unknown
      for (;;) {
        try {
          const v = await evaluate<T>(expression)
          if (v) return v
          last = v
        } catch (err) {
          last = err
        }
        if (Date.now() > deadline) {
          throw new Error(
            `waited ${timeoutMs} ms for ${expression} (last: ${last}); page errors: ${
              errors.join(' | ') || 'none'
            }`,
          )
        }
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    async click(selector) {
      const { x, y } = await center(selector)
      for (const type of ['mousePressed', 'mouseReleased']) {
        await send('Input.dispatchMouseEvent', { type, x, y, button: 'left', clickCount: 1 })
      }
    },
    async type(selector, text) {
      await evaluate(`(() => {
        const e = document.querySelector(${JSON.stringify(selector)})
        e.focus(); if (e.select) e.select()
      })()`)
      if (text === '') {
        // Inserting nothing leaves the selection: delete it as a user would.
        for (const type of ['keyDown', 'keyUp']) {
          await send('Input.dispatchKeyEvent', {
            type,
            key: 'Backspace',
            code: 'Backspace',
            windowsVirtualKeyCode: 8,
          })
        }
      } else {
        await send('Input.insertText', { text })
      }
    },
    async setFile(selector, path) {
      const { root } = await send('DOM.getDocument') as { root: { nodeId: number } }
      const { nodeId } = await send('DOM.querySelector', {
        nodeId: root.nodeId,
        selector,
      }) as { nodeId: number }
      if (!nodeId) throw new Error(`no element matches ${selector}`)
      await send('DOM.setFileInputFiles', { nodeId, files: [path] })
    },
    async setHeaders(headers) {
      await send('Network.setExtraHTTPHeaders', { headers })
    },
    async screenshot(path, o = {}) {
      const { data } = await send('Page.captureScreenshot', {
        format: 'png',
        captureBeyondViewport: o.fullPage ?? false,
      }) as { data: string }
      const bin = atob(data)
      const bytes = new Uint8Array(bin.length)
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i)
      await Deno.writeFile(path, bytes)
    },
  }
}
