/**
 * The packaging files agree with the deno.json tasks they stand for: the import map that `deno
 * run` from a URL needs is deno.json's, and the compile task, the systemd unit, the snap and the
 * container run the program with the `deno task service` flags (plus what each one needs on top,
 * said here). Where a real tool exists here, it checks the file: `systemd-analyze verify` for the
 * unit, a YAML parser for the snap.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { parse } from 'yaml'
import { importMapOf, importMapText } from '../../packaging/import_map.ts'
import { compileArgs, SERVICE_FLAGS, TARGETS } from '../../packaging/compile.ts'
import { notifyTarget } from '../../cli/service/sd_notify.ts'
import { runCmd, taskFlags } from '../support/peer.ts'
import { commandLine, ROOT, runFlags } from './support.ts'

const read = (path: string) => Deno.readTextFile(join(ROOT, path))
/** The service task's flags without --quiet (which only hides Deno's download lines). */
const serviceFlags = () => taskFlags('service').filter((f) => f !== '--quiet')

Deno.test('packaging/import_map.json is deno.json imports (regenerate: deno task import-map)', async () => {
  assert.equal(await read('packaging/import_map.json'), importMapText(await read('deno.json')))
})

Deno.test('the import map adds the subpaths deno.json implies for npm entries only', () => {
  assert.deepEqual(
    importMapOf({
      'multiformats': 'npm:multiformats@14.0.5',
      'multiformats/': 'npm:/multiformats@14.0.5/',
      '@scope/pkg': 'npm:@scope/pkg@1.0.0',
      'local': './src/local.ts',
    }).imports,
    {
      'multiformats': 'npm:multiformats@14.0.5',
      'multiformats/': 'npm:/multiformats@14.0.5/',
      '@scope/pkg': 'npm:@scope/pkg@1.0.0',
      '@scope/pkg/': 'npm:/@scope/pkg@1.0.0/',
      'local': './src/local.ts',
    },
  )
})

Deno.test('deno task compile: five targets, each with the service task flags', () => {
  assert.deepEqual(SERVICE_FLAGS, serviceFlags())
  assert.deepEqual(Object.values(TARGETS).sort(), [
    'aarch64-apple-darwin',
    'aarch64-unknown-linux-gnu',
    'x86_64-apple-darwin',
    'x86_64-pc-windows-msvc',
    'x86_64-unknown-linux-gnu',
  ])
  const args = compileArgs('windows-x64')
  assert.equal(args[0], 'compile')
  for (const f of serviceFlags()) assert.ok(args.includes(f), f)
  // The readiness message needs unstable net; the import worker is loaded by URL.
  assert.ok(args.includes('--unstable-net'))
  assert.equal(args[args.indexOf('--include') + 1], 'src/state/import_worker.ts')
  assert.equal(args[args.indexOf('--target') + 1], 'x86_64-pc-windows-msvc')
  assert.equal(args[args.indexOf('--output') + 1], 'dist/ipfs-cluster-windows-x64.exe')
  assert.equal(args.at(-1), 'cli/main.ts')
  assert.throws(() => compileArgs('plan9'), /unknown target plan9: one of linux-x64/)
})

Deno.test('systemd unit: Type=notify, hardened, ExecStart with the service flags', async () => {
  const unit = await read('packaging/ipfs-cluster.service')
  const lines = unit.split('\n')
  const execStart = commandLine(lines.filter((l) => l.startsWith('ExecStart=')).join('\n'), '.js')
  assert.deepEqual(runFlags(execStart, '.js'), [
    '--quiet',
    '--unstable-kv',
    '--unstable-net',
    ...serviceFlags(),
  ])
  for (
    const key of [
      'Type=notify',
      'DynamicUser=yes',
      'StateDirectory=ipfs-cluster',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'NoNewPrivileges=yes',
      'Environment=IPFS_CLUSTER_PATH=/var/lib/ipfs-cluster',
    ]
  ) assert.ok(lines.includes(key), key)
  // V8's JIT needs writable executable memory.
  assert.ok(!lines.some((l) => l.startsWith('MemoryDenyWriteExecute=yes')))
  // systemd's own check, with this machine's deno in place of /usr/bin/deno.
  const dir = await Deno.makeTempDir({ prefix: 'unit-' })
  try {
    const file = join(dir, 'ipfs-cluster.service')
    await Deno.writeTextFile(file, unit.replaceAll('/usr/bin/deno', Deno.execPath()))
    const r = await runCmd('systemd-analyze', ['verify', file]).catch((err) => {
      throw new Error(`systemd-analyze (Debian package systemd) is needed: ${err.message}`)
    })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr.trim(), '')
  } finally {
    await Deno.remove(dir, { recursive: true })
  }
})

Deno.test('snap: three commands and a notify daemon, the service flags, the right plugs', async () => {
  const snap = parse(await read('snap/snapcraft.yaml'))
  const apps = snap.apps as Record<string, { command: string; plugs: string[]; daemon?: string }>
  assert.deepEqual(
    Object.fromEntries(Object.entries(apps).map(([k, v]) => [k, v.command])),
    {
      'ipfs-cluster-service': 'bin/ipfs-cluster service',
      'ipfs-cluster-ctl': 'bin/ipfs-cluster ctl',
      'ipfs-cluster-follow': 'bin/ipfs-cluster follow',
      'daemon': 'bin/ipfs-cluster service daemon --init',
    },
  )
  assert.deepEqual(apps['ipfs-cluster-service'].plugs, [
    'network',
    'network-bind',
    'home',
    'removable-media',
  ])
  assert.deepEqual(apps['ipfs-cluster-ctl'].plugs, ['network', 'home', 'removable-media'])
  assert.deepEqual(apps['ipfs-cluster-follow'].plugs, ['network', 'network-bind', 'home'])
  assert.equal(apps.daemon.daemon, 'notify')
  assert.ok(apps.daemon.plugs.includes('daemon-notify'))
  const build: string = snap.parts['ipfs-cluster']['override-build']
  assert.match(build, /^deno task bundle$/m)
  assert.match(build, /dist\/import_worker\.ts/)
  assert.deepEqual(runFlags(commandLine(build, 'ipfs-cluster.js'), 'ipfs-cluster.js'), [
    '--quiet',
    '--unstable-kv',
    '--unstable-net',
    ...serviceFlags(),
  ])
})

Deno.test('Containerfile: two stages, non-root, the config volume, the cluster ports', async () => {
  const text = await read('packaging/Containerfile')
  const lines = text.split('\n')
  assert.equal(lines.filter((l) => l.startsWith('FROM ')).length, 2)
  assert.ok(lines.includes('USER ipfs-cluster'))
  assert.ok(lines.includes('VOLUME /data/ipfs-cluster'))
  assert.match(text, /IPFS_CLUSTER_PATH=\/data\/ipfs-cluster/)
  assert.ok(lines.includes('EXPOSE 9094 9095 9096 9097 9098'))
  assert.ok(lines.includes('CMD ["service", "daemon", "--init"]'))
  assert.match(text, /npm install .*deno@2\.9\.6/)
  assert.match(text, /RUN deno task bundle/)
  // The build context leaves out what `deno task bundle` makes again (BuildKit reads this file).
  const ignore = (await read('packaging/Containerfile.dockerignore')).split('\n')
  for (const p of ['node_modules', '.tools', 'dist', '.git']) assert.ok(ignore.includes(p), p)
})

Deno.test('NOTIFY_SOCKET: a path is used; abstract sockets and others are refused, saying why', () => {
  assert.equal(notifyTarget(undefined), undefined)
  assert.equal(notifyTarget(''), undefined)
  assert.deepEqual(notifyTarget('/run/systemd/notify'), { path: '/run/systemd/notify' })
  const abstract = notifyTarget('@/org/freedesktop/systemd1/notify')
  assert.ok(abstract && 'unsupported' in abstract)
  assert.match(abstract.unsupported, /abstract unix socket, which Deno cannot send to/)
  const vsock = notifyTarget('vsock:2:1234')
  assert.ok(vsock && 'unsupported' in vsock)
  assert.match(vsock.unsupported, /neither a socket path nor an abstract socket/)
})
