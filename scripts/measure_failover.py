"""Failover gap of a local three-node cluster.

Start one first:  quorder cluster local --nodes 3 --dir DIR --base-port 7950
Then:             python3 scripts/measure_failover.py DIR [BASE_PORT] [RUNS]

Each run kills -9 the node that is primary of the most shards, then places an order on
each of its shards through the survivors until one commits, and prints the time from the
kill to that commit per shard; the victim is restarted between runs.
"""
import json, subprocess, time, os, signal, sys
B=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'target', 'release')
DIR=sys.argv[1]
BASE=int(sys.argv[2]) if len(sys.argv) > 2 else 7950
RUNS=int(sys.argv[3]) if len(sys.argv) > 3 else 3
addrs=[f'127.0.0.1:{BASE + 10 * i}' for i in range(3)]
def fnv(b):
    h=0xcbf29ce484222325
    for x in b:
        h^=x; h=(h*0x100000001b3)&0xffffffffffffffff
    return h
def shard_of_sku(sku, n=8): return fnv(sku.to_bytes(8,'little'))%n
def q(args, addr_list, timeout_ms=300):
    return subprocess.run([B+'/quorder','--addr',','.join(addr_list),'--timeout-ms',str(timeout_ms),'--json']+args,capture_output=True,text=True)
def status():
    return json.loads(q(['status'],addrs,3000).stdout)
results=[]
for run in range(RUNS):
    st=status()
    counts={}
    for s in st['shards']:
        counts[s['primary']]=counts.get(s['primary'],0)+1
    victim=max(counts,key=counts.get)
    shards=[s['shard'] for s in st['shards'] if s['primary']==victim]
    skus={}
    for sku in range(1,1000):
        sh=shard_of_sku(sku)
        if sh in shards and sh not in skus: skus[sh]=sku
    for sku in skus.values():
        q(['item','put','--sku',str(sku),'--available','1000000','--price-cents','1'],addrs,3000)
    survivors=[a for i,a in enumerate(addrs) if i+1!=victim]
    pid=int(open(f'{DIR}/n{victim}/quorderd.lock').read().strip())
    t0=time.time(); os.kill(pid, signal.SIGKILL)
    gaps=[]
    for sh,sku in skus.items():
        while True:
            r=q(['order','place','--customer','1','--line',f'{sku}:1'],survivors,300)
            if r.returncode==0 and json.loads(r.stdout)['status']=='committed':
                gaps.append(time.time()-t0); break
    print(f"run {run}: killed node {victim} (primary of {len(shards)} shards); next commit on each: " + ", ".join(f"{g*1000:.0f} ms" for g in gaps), flush=True)
    results.append(max(gaps))
    subprocess.Popen([B+'/quorderd','--config',f'{DIR}/n{victim}/quorderd.toml'],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
    time.sleep(4)
results.sort()
print("median over runs of the slowest shard's gap: %.0f ms" % (results[len(results)//2]*1000))
