import hashlib, struct
D=b"spendguard-chain"
def f(tag,payload=b""): return bytes([tag])+struct.pack(">I",len(payload))+payload
T=lambda s: f(1,s.encode()) if s is not None else f(0)
I8=lambda v: f(2,struct.pack(">q",v)) if v is not None else f(0)
I4=lambda v: f(3,struct.pack(">i",v))
B=lambda v: f(4,bytes([1 if v else 0]))
TM=lambda v: f(5,struct.pack(">q",v))
BY=lambda b: f(6,b)
N=lambda s: f(7,s.encode())
def link(rec,prev,fields):
    b=D+bytes([1,rec])+(prev or b"")+struct.pack(">I",len(fields))+b"".join(fields)
    return hashlib.sha256(b).digest()
g=link(0,None,[T("acme"),T("gpt"),I4(7)])
e=link(1,g,[T("acme"),I8(42),T("ev-1"),T("fp"),T("h1"),T("gpt"),I4(7),T("authorize_exposure"),B(True),T(None),TM(820551845678901),I8(1500),I8(0),I8(None),I8(2000),I8(10000),I8(1),I8(1500),I8(0),T(None),T(None),I8(None),T("single_primary_linearizable"),I8(1)])
k=link(2,e,[T("acme"),T("gpt"),I4(7),I8(42),TM(820551845678901),TM(820551900000000),I8(1),I8(1),I8(1500),I8(0),N("-12.50"),I8(42),I8(0),N("0"),I8(1),BY(e),I8(2)])
r=hashlib.sha256(D+bytes([1,3])+T("gpt")+I4(7)+I8(2)+BY(k)+T("gpu")+I4(0)+I8(1)+BY(e)).digest()
for n,x in [("GENESIS",g),("EVENT",e),("CHECKPOINT",k),("ROOT",r)]: print(n,x.hex())
