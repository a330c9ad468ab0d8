/**
 * Runs a command line with both the real ipfs-cluster-ctl 1.1.6 and our ctl (in-process) and
 * compares stdout and exit code. The Go binary is `.tools/bin/ipfs-cluster-ctl` (built by
 * test/tools/build-go-tools.sh) or $IPFS_CLUSTER_CTL.
 *
 * @example
 * ```ts
 * if (HAVE_BIN) await same(srv.maddr, ['pin', 'ls'])
 * ```
 */
import { equal } from 'node:assert/strict'
import { ctlMain } from '../../../cli/ctl/main.ts'

/** Path of the Go ipfs-cluster-ctl. */
export const BIN = Deno.env.get('IPFS_CLUSTER_CTL') ??
  new URL('../../../.tools/bin/ipfs-cluster-ctl', import.meta.url).pathname
/** True when the Go binary is there. */
export const HAVE_BIN = (() => {
  try {
    return Deno.statSync(BIN).isFile
  } catch {
    return false
  }
})()

/** One CLI run. */
export interface Result {
  code: number
  stdout: string
}

/** Runs the Go ctl. */
export async function runGo(args: string[], env: Record<string, string> = {}): Promise<Result> {
  const out = await new Deno.Command(BIN, {
    args,
    env,
    clearEnv: true,
    stdout: 'piped',
    stderr: 'null',
  }).output()
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) }
}

/** Runs our ctl in-process. */
export async function runOurs(args: string[], env: Record<string, string> = {}): Promise<Result> {
  let stdout = ''
  const code = await ctlMain(args, {
    stdout: (s) => {
      stdout += s
    },
    stderr: () => {},
    env,
  })
  return { code, stdout }
}

/** Runs one command line with both CLIs and compares stdout and exit code. */
export async function same(
  host: string,
  args: string[],
  env: Record<string, string> = {},
  normalize: (s: string) => string = (s) => s,
) {
  const full = ['--host', host, ...args]
  const [go, ours] = await Promise.all([runGo(full, env), runOurs(full, env)])
  go.stdout = normalize(go.stdout)
  ours.stdout = normalize(ours.stdout)
  equal(
    ours.stdout,
    go.stdout,
    `stdout of: ${args.join(' ')}\n--- go:\n${go.stdout}\n--- ours:\n${ours.stdout}`,
  )
  equal(ours.code, go.code, `exit code of: ${args.join(' ')}`)
}
