"""Issue 9: template text vs SmolLM2 profiles (LightGCN, 5 seeds): means and paired t-tests. Run from the repository root."""
import json, statistics as st
from scipy import stats
def load(p, cfg):
    return {r['seed']: r for r in json.load(open(p)) if r['config']==cfg}
v3='benchmarks/results/v3/lightgcn_minilm.json'; v4='benchmarks/results/v4/'
A={'plain':load(v3,'ml100k_lightgcn'),'con_t':load(v3,'ml100k_lightgcn_rlmrec_con'),'darec_t':load(v3,'ml100k_lightgcn_darec'),
   'con_g':load(v4+'generated.json','ml100k_lightgcn_rlmrec_con'),'darec_g':load(v4+'generated.json','ml100k_lightgcn_darec'),
   'dis_t':load(v4+'template_disentangled.json','ml100k_lightgcn_darec'),'dis_g':load(v4+'generated_disentangled.json','ml100k_lightgcn_darec')}
for k,v in A.items():
    print(k, 'R %.4f ± %.4f'%(st.mean(r['test']['recall@20'] for r in v.values()), st.stdev(r['test']['recall@20'] for r in v.values())),
          'N %.4f ± %.4f'%(st.mean(r['test']['ndcg@20'] for r in v.values()), st.stdev(r['test']['ndcg@20'] for r in v.values())), 'best', [r['best_epoch'] for r in v.values()])
for a,b in [('con_t','con_g'),('darec_t','darec_g'),('dis_t','dis_g'),('darec_t','dis_t'),('darec_g','dis_g'),('plain','con_g'),('plain','darec_g'),('con_g','darec_g')]:
    for m in ('recall@20','ndcg@20'):
        s=sorted(set(A[a])&set(A[b])); x=[A[a][i]['test'][m] for i in s]; y=[A[b][i]['test'][m] for i in s]
        print(f"{b} - {a} {m}: {st.mean(yy-xx for xx,yy in zip(x,y)):+.4f} p={stats.ttest_rel(y,x).pvalue:.3f}")
