// Drives headless Chromium (puppeteer-core, the system's chromium) for the
// web chat widget's browser tests (tests/integration/webchat_widget_test.py)
// and its screenshots: the test sends one command per line on stdin (JSON),
// the driver answers each with one line on stdout, {"ok":true,"value":...}
// or {"ok":false,"error":"..."}, so the test can act on helpwired between
// two steps in the browser (an agent's reply, a typing signal). The page's
// console lines, errors and failed requests go to stderr.
//
// Usage: node widget_driver.js CHROMIUM
// Commands ({"op": ..., ...}):
//   page {lang, width, height, mobile, tz}  a new page (closes the others)
//   tab {}                                  another page like the last one, in the
//                                           same profile (the same visitor); it becomes
//                                           the current page; its index is returned
//   use {index}                             make tab index (0: the first) the current page
//   refuse {pattern, status}                requests whose URL contains pattern are
//                                           answered status (0: the connection refused)
//   goto {url}                              load url, wait for the load event
//   reload {}
//   eval {js}                               the value of the expression js
//   wait {js, timeout_ms}                   until js is truthy; its value
//   click {js}                              a real mouse click on the element js yields
//   type {text}   press {key}               keyboard input to the focused element
//   upload {js, path}                       sets the file input js yields to path
//   drag {js, events, files}                dispatches the DragEvents named in events
//                                           (dragenter, dragover, drop, dragleave) on the
//                                           element js yields, with one DataTransfer
//                                           carrying files ([{name, type, base64}])
//   screenshot {path, full}                 a PNG of the viewport
//   quit {}
// In js, W is the widget's shadow root (or null before it exists).
const readline = require("readline");
const puppeteer = require("puppeteer-core");

const PRELUDE = "const W = window.__helpwireWidget ? window.__helpwireWidget.root : null;";

function fn(js) {
  // eslint-disable-next-line no-new-func
  return new Function(PRELUDE + "return (" + js + ");");
}

async function main() {
  const chromium = process.argv[2];
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    // no sandbox: test machines and containers often run as root
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--font-render-hinting=none"],
  });
  let page = null;
  let pages = [];
  let setup = {};
  async function newPage(c) {
    page = await browser.newPage();
    pages.push(page);
    page.on("console", (m) => process.stderr.write("console: " + m.text() + "\n"));
    page.on("pageerror", (e) => process.stderr.write("pageerror: " + e.message + "\n"));
    page.on("requestfailed", (r) =>
      process.stderr.write("requestfailed: " + r.url() + " " + (r.failure() || {}).errorText + "\n"),
    );
    const lang = c.lang || "en-US";
    await page.setExtraHTTPHeaders({ "Accept-Language": lang });
    await page.evaluateOnNewDocument((l) => {
      Object.defineProperty(navigator, "language", { get: () => l });
      Object.defineProperty(navigator, "languages", { get: () => [l] });
    }, lang);
    if (c.tz) await page.emulateTimezone(c.tz);
    await page.setViewport({
      width: c.width || 1280,
      height: c.height || 800,
      isMobile: !!c.mobile,
      hasTouch: !!c.mobile,
      deviceScaleFactor: c.mobile ? 2 : 1,
    });
    return pages.length - 1;
  }
  const handlers = {
    async page(c) {
      for (const p of pages) await p.close();
      pages = [];
      setup = c;
      await newPage(c);
      return true;
    },
    async tab() {
      return await newPage(setup);
    },
    async use(c) {
      page = pages[c.index];
      if (!page) throw new Error("no tab " + c.index);
      await page.bringToFront();
      return c.index;
    },
    async refuse(c) {
      await page.setRequestInterception(true);
      page.on("request", (r) => {
        if (r.isInterceptResolutionHandled()) return;
        if (!r.url().includes(c.pattern)) return r.continue();
        if (!c.status) return r.abort("connectionrefused");
        return r.respond({ status: c.status, contentType: "application/json",
                           headers: { "Access-Control-Allow-Origin": "*" }, body: '{"code":"refused"}' });
      });
      return true;
    },
    async drag(c) {
      const h = await page.evaluateHandle(fn(c.js));
      if (!h.asElement()) throw new Error("no element: " + c.js);
      return await page.evaluate((el, events, files) => {
        const dt = new DataTransfer();
        for (const f of files || []) {
          const bytes = Uint8Array.from(atob(f.base64), (ch) => ch.charCodeAt(0));
          dt.items.add(new File([bytes], f.name, { type: f.type }));
        }
        return events.map((name) =>
          el.dispatchEvent(new DragEvent(name, { dataTransfer: dt, bubbles: true, cancelable: true, composed: true })));
      }, h, c.events, c.files);
    },
    async goto(c) {
      await page.goto(c.url, { waitUntil: "load" });
      return page.url();
    },
    async reload() {
      await page.reload({ waitUntil: "load" });
      return true;
    },
    async eval(c) {
      return await page.evaluate(fn(c.js));
    },
    async wait(c) {
      const h = await page.waitForFunction(fn(c.js), { timeout: c.timeout_ms || 10000, polling: 100 });
      return await h.jsonValue();
    },
    async click(c) {
      const h = await page.evaluateHandle(fn(c.js));
      const el = h.asElement();
      if (!el) throw new Error("no element: " + c.js);
      await el.click();
      return true;
    },
    async type(c) {
      await page.keyboard.type(c.text, { delay: 5 });
      return true;
    },
    async press(c) {
      if (c.shift) await page.keyboard.down("Shift");
      await page.keyboard.press(c.key);
      if (c.shift) await page.keyboard.up("Shift");
      return true;
    },
    async upload(c) {
      const h = await page.evaluateHandle(fn(c.js));
      const el = h.asElement();
      if (!el) throw new Error("no element: " + c.js);
      await el.uploadFile(c.path);
      return true;
    },
    async screenshot(c) {
      await page.screenshot({ path: c.path, fullPage: !!c.full });
      return c.path;
    },
  };
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let c;
    try {
      c = JSON.parse(line);
    } catch (e) {
      process.stdout.write(JSON.stringify({ ok: false, error: "bad command: " + e.message }) + "\n");
      continue;
    }
    if (c.op === "quit") break;
    try {
      const h = handlers[c.op];
      if (!h) throw new Error("unknown op " + c.op);
      const value = await h(c);
      process.stdout.write(JSON.stringify({ ok: true, value: value === undefined ? null : value }) + "\n");
    } catch (e) {
      process.stdout.write(JSON.stringify({ ok: false, error: String((e && e.message) || e) }) + "\n");
    }
  }
  await browser.close();
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
