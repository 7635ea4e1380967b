import statistics, sys, time, logging
from weasyprint import HTML, CSS
from weasyprint.text.fonts import FontConfiguration
from weasyprint.pdf import fonts as wfonts
from lms import pdf
from bench.receipt import sample_acknowledgment
from lms.config import Defaults
logging.getLogger("weasyprint").setLevel(logging.ERROR)
if "--fonttools" in sys.argv: wfonts.harfbuzz_subset = None
ack = sample_acknowledgment()
html = pdf.render_template("receipt.html", ack=ack, cycle_name="2026 annual", department=Defaults.DEPARTMENT_NAME)
html_nolink = html.replace('<link rel="stylesheet" href="css/pdf.css">', '')
base = pdf.STATIC_DIR.as_uri() + "/"
fetch = pdf.StaticOnlyFetcher()
shared_fc = FontConfiguration()
css_shared = CSS(filename=str(pdf.STATIC_DIR / "css/pdf.css"), base_url=base, url_fetcher=fetch, font_config=shared_fc)
def run(name, fn, n=15):
    out = fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append((time.perf_counter()-t)*1000)
    print(f"{name:40s} median {statistics.median(ts):6.1f}  min {min(ts):6.1f}  size {len(out)}")
def doc(h=html, **kw):
    return HTML(string=h, base_url=base, url_fetcher=fetch)
variants = {
 "baseline tags+ua1": lambda: doc().write_pdf(pdf_tags=True, pdf_variant="pdf/ua-1"),
 "tags only": lambda: doc().write_pdf(pdf_tags=True),
 "no tags no variant": lambda: doc().write_pdf(),
 "ua1 full_fonts": lambda: doc().write_pdf(pdf_tags=True, pdf_variant="pdf/ua-1", full_fonts=True),
 "ua1 hinting": lambda: doc().write_pdf(pdf_tags=True, pdf_variant="pdf/ua-1", hinting=True),
 "ua1 shared fc + cached CSS": lambda: doc(html_nolink).write_pdf(stylesheets=[css_shared], font_config=shared_fc, pdf_tags=True, pdf_variant="pdf/ua-1"),
 "ua1 cached CSS new fc": lambda: doc(html_nolink).write_pdf(stylesheets=[CSS(filename=str(pdf.STATIC_DIR / "css/pdf.css"), base_url=base, url_fetcher=fetch)], pdf_tags=True, pdf_variant="pdf/ua-1"),
 "ua1 shared fc + CSS + full_fonts": lambda: doc(html_nolink).write_pdf(stylesheets=[css_shared], font_config=shared_fc, pdf_tags=True, pdf_variant="pdf/ua-1", full_fonts=True),
}
for k, v in variants.items():
    run(k, v)
for k, v in variants.items():
    run(k, v)
