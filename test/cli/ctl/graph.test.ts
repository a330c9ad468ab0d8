/**
 * `health graph` dot output, against the reference's own expectations (graph_test.go of
 * ipfs-cluster-ctl 1.1.6, copied verbatim as fixtures).
 */
import { deepEqual, equal } from 'node:assert/strict'
import { makeDot } from '../../../cli/ctl/graph.ts'
import type { ConnectGraph } from '../../../src/api/rest/client.ts'

const [pid1, pid2, pid3] = [
  'QmUBuxVHoNNjfmNpTad36UeaFQv3gXAtCv9r6KhmeqhEhD',
  'QmV35LjbEGPfN7KfMAJp43VV2enwXqqQf5esx4vUcgHDQJ',
  'QmZ2ckU7G35MYyJgMTwMUnicsGqSy3YUxGBX7qny6MQmJu',
]
const [pid4, pid5, pid6] = [
  'QmXbiVZd93SLiu9TAm21F2y9JwGiFLydbEVkPBaMR3DZDV',
  'QmPFKAGZbUjdzt8BBx8VTWCe9UeUQVcoqHFehSPzN5LSsq',
  'QmbU7273zH6jxwDe2nqRmEm2rp5PpqP2xeQr2xCmwbBsuL',
]
const [pid7, pid8, pid9] = [
  'QmQsdAdCHs4PRLi5tcoLfasYppryqQENxgAy4b2aS8xccb',
  'QmVV2enwXqqQf5esx4v36UeaFQvFehSPzNfi8aaaaaanM8',
  'QmfCHNQ2vbUmAuJZhE2hEpgiJq4sL1XScWEKnUrVtWZdeD',
]

const SIMPLE_IPFS = `digraph cluster {
/* The nodes of the connectivity graph */
/* The cluster-service peers */
subgraph  {
rank="min"
C0 [label=< <B>  </B> <BR/> <B> Qm*eqhEhD </B> > group="QmUBuxVHoNNjfmNpTad36UeaFQv3gXAtCv9r6KhmeqhEhD" color="orange" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="box3d" peripheries="2" ]
C1 [label=< <B>  </B> <BR/> <B> Qm*cgHDQJ </B> > group="QmV35LjbEGPfN7KfMAJp43VV2enwXqqQf5esx4vUcgHDQJ" color="darkorange3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="box3d" ]
C2 [label=< <B>  </B> <BR/> <B> Qm*6MQmJu </B> > group="QmZ2ckU7G35MYyJgMTwMUnicsGqSy3YUxGBX7qny6MQmJu" color="darkorange3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="box3d" ]
}

/* The ipfs peers */
subgraph  {
rank="max"
I0 [label=< <B> IPFS </B> <BR/> <B> Qm*N5LSsq </B> > group="QmPFKAGZbUjdzt8BBx8VTWCe9UeUQVcoqHFehSPzN5LSsq" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I1 [label=< <B> IPFS </B> <BR/> <B> Qm*R3DZDV </B> > group="QmXbiVZd93SLiu9TAm21F2y9JwGiFLydbEVkPBaMR3DZDV" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I2 [label=< <B> IPFS </B> <BR/> <B> Qm*wbBsuL </B> > group="QmbU7273zH6jxwDe2nqRmEm2rp5PpqP2xeQr2xCmwbBsuL" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
}

/* Edges representing active connections in the cluster */
/* The connections among cluster-service peers */
C0 -> C1
C0 -> C2
C1 -> C0
C1 -> C2
C2 -> C0
C2 -> C1

/* The connections between cluster peers and their ipfs daemons */
C0 -> I1
C1 -> I0
C2 -> I2

/* The swarm peer connections among ipfs daemons in the cluster */
I0 -> I1
I0 -> I2
I1 -> I0
I1 -> I2
I2 -> I1
I2 -> I0
}`

const ALL_IPFS = `digraph cluster {
/* The nodes of the connectivity graph */
/* The cluster-service peers */
subgraph  {
rank="min"
C0 [label=< <B>  </B> <BR/> <B> Qm*eqhEhD </B> > group="QmUBuxVHoNNjfmNpTad36UeaFQv3gXAtCv9r6KhmeqhEhD" color="orange" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="box3d" peripheries="2" ]
C1 [label=< <B>  </B> <BR/> <B> Qm*cgHDQJ </B> > group="QmV35LjbEGPfN7KfMAJp43VV2enwXqqQf5esx4vUcgHDQJ" color="darkorange3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="box3d" ]
C2 [label=< <B>  </B> <BR/> <B> Qm*6MQmJu </B> > group="QmZ2ckU7G35MYyJgMTwMUnicsGqSy3YUxGBX7qny6MQmJu" color="darkorange3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="box3d" ]
}

/* The ipfs peers */
subgraph  {
rank="max"
I0 [label=< <B> IPFS </B> <BR/> <B> Qm*N5LSsq </B> > group="QmPFKAGZbUjdzt8BBx8VTWCe9UeUQVcoqHFehSPzN5LSsq" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I1 [label=< <B> IPFS </B> <BR/> <B> Qm*S8xccb </B> > group="QmQsdAdCHs4PRLi5tcoLfasYppryqQENxgAy4b2aS8xccb" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I2 [label=< <B> IPFS </B> <BR/> <B> Qm*aaanM8 </B> > group="QmVV2enwXqqQf5esx4v36UeaFQvFehSPzNfi8aaaaaanM8" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I3 [label=< <B> IPFS </B> <BR/> <B> Qm*R3DZDV </B> > group="QmXbiVZd93SLiu9TAm21F2y9JwGiFLydbEVkPBaMR3DZDV" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I4 [label=< <B> IPFS </B> <BR/> <B> Qm*wbBsuL </B> > group="QmbU7273zH6jxwDe2nqRmEm2rp5PpqP2xeQr2xCmwbBsuL" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
I5 [label=< <B> IPFS </B> <BR/> <B> Qm*tWZdeD </B> > group="QmfCHNQ2vbUmAuJZhE2hEpgiJq4sL1XScWEKnUrVtWZdeD" color="turquoise3" style="filled" colorscheme="x11" fontcolor="black" fontname="Arial" shape="cylinder" ]
}

/* Edges representing active connections in the cluster */
/* The connections among cluster-service peers */
C0 -> C1
C0 -> C2
C1 -> C0
C1 -> C2
C2 -> C0
C2 -> C1

/* The connections between cluster peers and their ipfs daemons */
C0 -> I3
C1 -> I0
C2 -> I4

/* The swarm peer connections among ipfs daemons in the cluster */
I0 -> I3
I0 -> I4
I0 -> I1
I0 -> I2
I0 -> I5
I3 -> I0
I3 -> I4
I3 -> I1
I3 -> I2
I3 -> I5
I4 -> I3
I4 -> I0
I4 -> I1
I4 -> I2
I4 -> I5
}`

function graph(ipfsLinks: Record<string, string[]>): ConnectGraph {
  return {
    cluster_id: pid1,
    id_to_peername: null,
    cluster_links: { [pid1]: [pid2, pid3], [pid2]: [pid1, pid3], [pid3]: [pid1, pid2] },
    ipfs_links: ipfsLinks,
    cluster_trust_links: null,
    cluster_to_ipfs: { [pid1]: pid4, [pid2]: pid5, [pid3]: pid6 },
  }
}

Deno.test('graph: cluster and ipfs links render as the reference (simple)', () => {
  const out = makeDot(
    graph({ [pid4]: [pid5, pid6], [pid5]: [pid4, pid6], [pid6]: [pid4, pid5] }),
    false,
  )
  deepEqual(out.split('\n'), SIMPLE_IPFS.split('\n'))
  equal(out, SIMPLE_IPFS)
})

Deno.test('graph: --all-ipfs-peers adds swarm peers outside the cluster', () => {
  const links = {
    [pid4]: [pid5, pid6, pid7, pid8, pid9],
    [pid5]: [pid4, pid6, pid7, pid8, pid9],
    [pid6]: [pid4, pid5, pid7, pid8, pid9],
  }
  equal(makeDot(graph(links), true), ALL_IPFS)
  // Without the flag, peers outside the cluster are neither nodes nor edge ends.
  const plain = makeDot(graph(links), false)
  equal(plain.includes('Qm*S8xccb'), false)
})

Deno.test('graph: trusted peers are T nodes, a peer without IPFS gets an Errored node', () => {
  const g = graph({ [pid4]: [], [pid5]: [] })
  g.cluster_trust_links = { [pid2]: true }
  g.id_to_peername = { [pid1]: 'self', [pid2]: 'two' }
  delete g.cluster_to_ipfs![pid3]
  const out = makeDot(g, false)
  equal(out.includes('T1 [label=< <B> two </B> <BR/> <B> Qm*cgHDQJ </B> >'), true)
  equal(out.includes('C0 [label=< <B> self </B>'), true)
  equal(out.includes('I2 [label=< <B> IPFS </B> <BR/> <B> Errored </B> >'), true)
  equal(out.includes('C2 -> I2 [ style="dotted" ]'), true)
  equal(out.endsWith('}'), true)
})
