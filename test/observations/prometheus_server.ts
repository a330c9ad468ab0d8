/**
 * A real Prometheus (Debian's `prometheus` package, /usr/bin/prometheus) for tests: its own
 * config and storage in a temp folder, on 127.0.0.1, scraping the given targets every second,
 * asked PromQL through its HTTP API. Stopped by its PID.
 *
 * @example
 * ```ts
 * const prom = await startPrometheus(['127.0.0.1:8888'])
 * await prom.query('ipfscluster_pins_pin_add') // [{ metric: {...}, value: [ts, '3'] }]
 * await prom.stop()
 * ```
 */
import { join } from 'node:path'
import { freePort } from '../../src/util/free_port.ts'
import { errorMessage } from '../../src/errors.ts'
import { spawnLogged } from '../support/spawn.ts'
import { waitFor } from '../support/wait.ts'

/** Where Debian installs it; PROMETHEUS_BIN overrides. */
const DEFAULT_BIN = '/usr/bin/prometheus'

/** One series of an instant query's answer. */
export interface PromSample {
  metric: Record<string, string>
  value: [number, string]
}

/** A running Prometheus. */
export interface PrometheusServer {
  url: string
  pid: number
  /** An instant PromQL query; throws with Prometheus's error text when it refuses it. */
  query(promql: string): Promise<PromSample[]>
  logs(): string
  stop(): Promise<void>
}

/** The binary, or an error that says how to install it (tests must not skip silently). */
export async function findPrometheus(): Promise<string> {
  const bin = Deno.env.get('PROMETHEUS_BIN') ?? DEFAULT_BIN
  try {
    await Deno.stat(bin)
    return bin
  } catch {
    throw new Error(
      `Prometheus not found at ${bin}: install it with \`apt-get install -y prometheus\` ` +
        '(or set PROMETHEUS_BIN)',
    )
  }
}

/** Starts Prometheus scraping `targets` (`host:port`, path /metrics) every second. */
export async function startPrometheus(targets: string[]): Promise<PrometheusServer> {
  const bin = await findPrometheus()
  const dir = await Deno.makeTempDir({ prefix: 'prometheus-' })
  const port = freePort()
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: cluster',
    '    static_configs:',
    `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
    '',
  ].join('\n')
  await Deno.writeTextFile(join(dir, 'prometheus.yml'), config)
  const child = spawnLogged(bin, [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ])
  const url = `http://127.0.0.1:${port}`
  const stop = async () => {
    await child.stop()
    await Deno.remove(dir, { recursive: true }).catch(() => {})
  }
  // Ready when its API answers.
  try {
    await waitFor(async () => {
      if (child.exited()) throw new Error(`prometheus exited early:\n${child.logs()}`)
      return await fetch(`${url}/-/ready`).then(async (r) => {
        await r.body?.cancel()
        return r.ok
      }, () => false)
    }, { what: 'prometheus to answer /-/ready', timeoutMs: 60_000 })
  } catch (err) {
    // An early exit's message has the output; a timeout gets it here.
    const failure = child.exited() ? err : new Error(`${errorMessage(err)}:\n${child.logs()}`)
    await stop()
    throw failure
  }
  return {
    url,
    pid: child.pid,
    logs: child.logs,
    async query(promql) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`)
      const body = await res.json()
      if (body.status !== 'success') throw new Error(`PromQL ${promql}: ${body.error}`)
      return body.data.result as PromSample[]
    },
    stop,
  }
}
