/**
 * What each entry loads before it runs: the static import graphs (from `deno info --json`) that a
 * command evaluates (deno.json's `lazy-dynamic-imports`: a dynamic import loads when it is taken).
 * `service version` and help load no npm package, ctl loads no server code, and the daemon
 * reaches the embedded IPFS node (Helia) and the UnixFS importer only through dynamic imports,
 * taken when the config or a request needs them.
 */
import { deepEqual, ok } from 'node:assert/strict'

const ROOT = new URL('../..', import.meta.url)

interface Graph {
  /** Local modules (paths from the repository root) and the npm packages they import. */
  local: string[]
  npm: string[]
  /** Modules imported dynamically from the static graph (paths from the repository root). */
  dynamic: string[]
}

interface InfoModule {
  specifier: string
  kind?: string
  npmPackage?: string
  dependencies?: { code?: { specifier: string }; isDynamic?: boolean; type?: unknown }[]
}

async function staticGraph(entry: string): Promise<Graph> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ['info', '--json', entry],
    cwd: ROOT,
    stdout: 'piped',
    stderr: 'piped',
  }).output()
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr))
  const info = JSON.parse(new TextDecoder().decode(out.stdout))
  const modules = new Map<string, InfoModule>(
    info.modules.map((m: InfoModule) => [m.specifier, m]),
  )
  const redirects: Record<string, string> = info.redirects ?? {}
  const local = new Set<string>()
  const direct = new Set<string>()
  const dynamic = new Set<string>()
  const rel = (s: string) => s.replace(ROOT.href, '')
  const stack = [new URL(entry, ROOT).href]
  const seen = new Set<string>()
  while (stack.length) {
    const s = redirects[stack.at(-1)!] ?? stack.at(-1)!
    stack.pop()
    if (seen.has(s)) continue
    seen.add(s)
    const m = modules.get(s)
    if (!m) continue
    // deno.json has nodeModulesDir "manual": npm modules are files under node_modules.
    const nm = s.lastIndexOf('/node_modules/')
    if (nm >= 0) {
      const path = s.slice(nm + '/node_modules/'.length).split('/')
      direct.add(path[0].startsWith('@') ? `${path[0]}/${path[1]}` : path[0])
      continue
    }
    if (m.kind === 'npm') {
      direct.add(m.npmPackage!.slice(0, m.npmPackage!.indexOf('@', 1)))
      continue
    }
    if (s.startsWith('file:')) local.add(rel(s))
    for (const d of m.dependencies ?? []) {
      if (!d.code) continue
      if (d.isDynamic) dynamic.add(rel(d.code.specifier))
      else stack.push(d.code.specifier)
    }
  }
  return { local: [...local].sort(), npm: [...direct].sort(), dynamic: [...dynamic].sort() }
}

Deno.test('module graph: the entry and `service version`/help load no npm package', async () => {
  const entry = await staticGraph('cli/main.ts')
  deepEqual(entry.npm, [])
  deepEqual(entry.dynamic, ['cli/ctl/main.ts', 'cli/follow/main.ts', 'cli/service/main.ts'])
  const service = await staticGraph('cli/service/main.ts')
  deepEqual(service.npm, [], 'service front: no npm package')
  ok(service.local.length <= 16, service.local.join(' '))
  ok((await staticGraph('src/config/identity.ts')).npm.length > 0, 'the walker sees npm imports')
  deepEqual(service.dynamic, [
    'cli/service/daemon.ts',
    'cli/service/init.ts',
    'cli/service/state.ts',
    'src/service_config.ts',
  ])
})

Deno.test('module graph: ctl loads the REST client, no server, state, consensus or IPFS code', async () => {
  const ctl = await staticGraph('cli/ctl/main.ts')
  const server = ctl.local.filter((m) =>
    /^src\/(api\/rest\/server|api\/common\/http_api|daemon|cluster|consensus|state|ipfsconn|net|pintracker)\b/
      .test(m)
  )
  deepEqual(server, [])
  deepEqual([...new Set(ctl.npm)], ['multiformats'])
})

Deno.test('module graph: the daemon reaches Helia and the UnixFS importer only dynamically', async () => {
  const daemon = await staticGraph('src/daemon.ts')
  ok(daemon.npm.includes('libp2p'), daemon.npm.join(' '))
  const heavy = daemon.npm.filter((p) =>
    /^(helia|@helia\/|ipfs-unixfs-importer|ipfs-unixfs-exporter|blockstore-fs|datastore-fs)/.test(p)
  )
  deepEqual(heavy, [])
  // Of the embedded node, only its config section (service.json knows every section).
  const config = new Set((await staticGraph('src/ipfsconn/embedded/config.ts')).local)
  deepEqual(
    daemon.local.filter((m) => m.startsWith('src/ipfsconn/embedded/') && !config.has(m)),
    [],
  )
  ok(daemon.dynamic.includes('src/ipfsconn/embedded/connector.ts'), daemon.dynamic.join(' '))
  ok(daemon.dynamic.includes('src/adder/adder.ts'), daemon.dynamic.join(' '))
})
