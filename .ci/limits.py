#!/usr/bin/env python3
"""Size limits of the host's sources: no file over 700 lines, no function over 120.

Usage: python3 .ci/limits.py [DIR]   (default: host). Prints each offender and exits 1 if any.
Functions are found by their `fn` line and measured to the brace that closes them.
"""
import os,re,sys
root=sys.argv[1] if len(sys.argv)>1 else 'host'
fnre=re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)')
bad=[]
for d,_,fs in os.walk(root):
    if '/target' in d or '/fuzz/' in d+'/': continue
    for f in fs:
        if not f.endswith('.rs'): continue
        p=os.path.join(d,f); lines=open(p).read().split('\n')
        if len(lines)>700: bad.append((len(lines),p,'FILE'))
        i=0
        while i<len(lines):
            m=fnre.match(lines[i])
            if m:
                depth=0; started=False; j=i
                while j<len(lines):
                    l=re.sub(r'"(\\.|[^"\\])*"','""',lines[j]); l=re.sub(r"'(\\.|[^'\\])'","''",l); l=l.split('//')[0]
                    for c in l:
                        if c=='{': depth+=1; started=True
                        elif c=='}': depth-=1
                    if started and depth<=0: break
                    if not started and l.rstrip().endswith(';'): break
                    j+=1
                n=j-i+1
                if started and n>120: bad.append((n,p,m.group(6)))
            i+=1
for b in sorted(bad,reverse=True): print(*b)
sys.exit(1 if bad else 0)
