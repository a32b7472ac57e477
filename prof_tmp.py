import os, sys, time, subprocess, tempfile, resource
d = tempfile.mkdtemp()
os.environ.setdefault("DATABASE_URL", f"sqlite:///{d}/p.sqlite3"); os.environ.update(SECRET_KEY="x", DEBUG="0", WEBHOOKS_ALLOW_PRIVATE_URLS="1", DJANGO_SETTINGS_MODULE="config.settings", LOG_LEVEL="WARNING")
import django; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
rec = subprocess.Popen([sys.executable, "-m", "tests.receiver", "--port", "8788", "--log", f"{d}/r.tsv"]); time.sleep(1)
from tests.stack_world import world_create, events_record
N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
w = world_create(codes=1, receiver_urls=["http://127.0.0.1:8788/hook"], events=["coupon.redeemed"])
events_record(offer_id=w["offer_id"], count=N)
from webhooks.transport import deliveries_send_due
def cpu(): r = resource.getrusage(resource.RUSAGE_SELF); return r.ru_utime + r.ru_stime
prof = None
if "--profile" in sys.argv:
    from pyinstrument import Profiler; prof = Profiler(); prof.start()
t, c = time.perf_counter(), cpu()
from django.db import connection
from django.test.utils import CaptureQueriesContext
from collections import Counter
with CaptureQueriesContext(connection) as q:
    n = deliveries_send_due()
kinds = Counter(x["sql"][:60] for x in q.captured_queries)
print(len(q.captured_queries), "queries")
for k, v in kinds.most_common(12): print(v, k)
el = time.perf_counter() - t
print(n, "in", el, "=", n/el, "/s; cpu ms per", (cpu()-c)*1000/n)
if prof: prof.stop(); print(prof.output_text(unicode=False, color=False, show_all=False)[:12000])
rec.kill()
