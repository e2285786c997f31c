// Drives headless Chromium (puppeteer-core, the system's chromium) to a
// page and prints what the page reports: the line it logs as
// "HELPWIRE_RESULT {...}" (the browser example, clients/examples/browser),
// as JSON on stdout. The page's other console lines, failed requests and
// errors go to stderr.
// Usage: node browser_client.js CHROMIUM URL [TIMEOUT_MS]
const puppeteer = require("puppeteer-core");

async function main() {
  const [chromium, url, timeoutArg] = process.argv.slice(2);
  const timeoutMs = Number(timeoutArg || 30000);
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    // no sandbox: test machines and containers often run as root
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
  try {
    const page = await browser.newPage();
    const result = new Promise((resolve, reject) => {
      page.on("console", (msg) => {
        const text = msg.text();
        if (text.startsWith("HELPWIRE_RESULT ")) resolve(text.slice("HELPWIRE_RESULT ".length));
        else process.stderr.write("console: " + text + "\n");
      });
      page.on("pageerror", (e) => process.stderr.write("pageerror: " + e.message + "\n"));
      page.on("requestfailed", (r) =>
        process.stderr.write("requestfailed: " + r.url() + " " + (r.failure() || {}).errorText + "\n"),
      );
      setTimeout(() => reject(new Error("no HELPWIRE_RESULT within " + timeoutMs + " ms")), timeoutMs);
    });
    await page.goto(url);
    process.stdout.write((await result) + "\n");
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
