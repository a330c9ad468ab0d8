/**
 * A config folder written by the real IPFS Cluster 1.1.6 `init` (its default: crdt consensus,
 * pebble datastore), carrying the legacy keys of older releases (the identity inside `cluster`,
 * `replication_factor`, the `monbasic` monitor) and no identity.json, runs our daemon: it starts
 * with the legacy identity and the CRDT consensus the file asks for, and says once, at start, what
 * it ignores.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { startPeerProcess, TOOLS_BIN } from '../support/peer.ts'
import { freePort } from '../../bench/peers.ts'
import { identityFromJSON } from '../../src/config/identity.ts'

const GO_SERVICE = join(TOOLS_BIN, 'ipfs-cluster-service')
const haveGo = (() => {
  try {
    return Deno.statSync(GO_SERVICE).isFile
  } catch {
    return false
  }
})()

Deno.test({
  name: 'a folder from the real init with legacy keys and no identity.json runs, warning once',
  ignore: !haveGo,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: 'cluster-goinit-' })
    try {
      // `init` only writes files (no network), so it needs no network namespace.
      const init = await new Deno.Command(GO_SERVICE, {
        args: ['--config', dir, 'init'],
        stdout: 'null',
        stderr: 'piped',
      }).output()
      assert.ok(init.success, new TextDecoder().decode(init.stderr))
      const file = join(dir, 'service.json')
      const cfg = JSON.parse(await Deno.readTextFile(file))
      assert.deepEqual(Object.keys(cfg.consensus), ['crdt'])
      assert.deepEqual(Object.keys(cfg.datastore), ['pebble'])

      // An identity of an IPFS Cluster 0.10 peer: RSA, inside service.json.
      const key = await generateKeyPair('RSA', 2048)
      const privateKey = btoa(String.fromCharCode(...privateKeyToProtobuf(key)))
      const id = identityFromJSON({ private_key: privateKey }).id
      await Deno.remove(join(dir, 'identity.json'))
      cfg.cluster.id = id
      cfg.cluster.private_key = privateKey
      cfg.cluster.replication_factor = -1
      cfg.monitor.monbasic = { check_interval: '15s' }
      // Loopback only, free ports; the embedded IPFS node so that no Kubo is needed.
      cfg.cluster.listen_multiaddress = [`/ip4/127.0.0.1/tcp/${freePort()}`]
      cfg.cluster.mdns_interval = '0s'
      cfg.api.restapi.http_listen_multiaddress = `/ip4/127.0.0.1/tcp/${freePort()}`
      cfg.api.ipfsproxy.listen_multiaddress = `/ip4/127.0.0.1/tcp/${freePort()}`
      cfg.ipfs_connector = { embedded: {} }
      await Deno.writeTextFile(file, JSON.stringify(cfg, null, 2))

      const peer = await startPeerProcess({ ipfs: 'embedded', configDir: dir })
      try {
        const r = await peer.ctl(['--enc', 'json', 'id'])
        assert.equal(r.code, 0, r.stderr)
        assert.equal(JSON.parse(r.stdout).id, id, 'the legacy identity is the peer')
        const saved = JSON.parse(await Deno.readTextFile(join(dir, 'identity.json')))
        assert.deepEqual(saved, { id, private_key: privateKey })

        const logs = peer.logs()
        const once = (text: string) => {
          const n = logs.split(text).length - 1
          assert.equal(n, 1, `${JSON.stringify(text)} said ${n} times in:\n${logs}`)
        }
        once('cluster.id: IPFS Cluster 0.10 and older kept the identity here')
        once('cluster.private_key: IPFS Cluster 0.10 and older kept the identity here')
        once('cluster.replication_factor: IPFS Cluster 0.9 and older; ignored')
        // The reference's default consensus runs as written (it once fell back to Raft here).
        once('crdt replica started')
        once('datastore.pebble: ignored: the pinset lives in Deno KV')
        once('monitor.monbasic: the basic monitor of IPFS Cluster 0.10 and older; ignored')
        once(`identity taken from the legacy cluster.id/cluster.private_key of ${file}`)
        // No key is ever printed.
        assert.ok(!logs.includes(privateKey.slice(0, 40)))
        assert.ok(!logs.includes(cfg.cluster.secret))
      } finally {
        assert.equal(await peer.stop(), 0)
      }
    } finally {
      await Deno.remove(dir, { recursive: true })
    }
  },
})
