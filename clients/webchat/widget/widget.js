/*
 * The helpwire web chat widget: one script tag on any site,
 *
 *   <script src="https://chat.example.com/widget.js" async></script>
 *
 * adds a launcher button and a chat panel to the page. Plain JavaScript,
 * no build step, no external resources: everything comes from the bridge
 * that served this file (webchat-bridge), whose JSON API it calls
 * cross-origin (the bridge's --allowed-origins).
 *
 * Isolation: the widget lives in a shadow root on its own element, whose
 * inline style resets every property (`all: initial`, important), so the
 * host page's styles do not reach in and the widget's (widget.css, loaded
 * into the shadow root) do not leak out.
 *
 * The conversation: the visitor's session id is kept in localStorage (per
 * bridge), the history is loaded from /api/history, then replies stream
 * over Server-Sent Events (/api/events), or a long poll when the stream
 * cannot be held. Server text reaches the DOM only as text nodes (links
 * are built with DOM APIs, http and https only), never as HTML.
 *
 * Script tag options (data- attributes): data-color="#0a7" (the widget's
 * accent: launcher, header, the visitor's bubbles, the bot's, links, focus;
 * the text on it is white or near-black by contrast), data-position="left"
 * (or right), data-lang="zh" (or en; else the browser's language),
 * data-open="true" (open at load), data-transport="poll" (long poll only,
 * for sites behind a proxy that holds back Server-Sent Events).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) {
    var all = document.querySelectorAll("script[src*='widget.js']");
    script = all[all.length - 1];
  }
  if (!script || window.__helpwireWidget) return;
  var BASE = new URL(".", script.src).href.replace(/\/$/, "");
  var SVG = "http://www.w3.org/2000/svg";
  var KEY = "helpwire.webchat:" + BASE;
  var TYPING_MS = 6000;

  var WORDS = {
    en: {
      title: "Chat with us", open: "Open chat", close: "Close chat", unread: "unread messages",
      placeholder: "Type your message", send: "Send", attach: "Attach a file", you: "You",
      bot: "Assistant", agent: "Support", typing: "is typing", someone: "Someone",
      messages: "Messages", drop: "Drop a file to send it", rate: "How did we do?",
      star: function (n) { return n + (n === 1 ? " star" : " stars"); },
      comment: "Anything to add? (optional)", submitRating: "Send rating",
      thanks: "Thank you for your feedback!", rated: "Thank you, we already have your rating.",
      awayNow: "We're away right now.", backAt: function (t) { return "We'll be back " + t + "."; },
      leaveEmail: "Leave your email and we'll answer you there too:",
      email: "Your email", badEmail: "Please enter a valid email address.",
      online: "We usually answer within minutes.",
      tooBig: function (mb) { return "This file is too large (the limit is " + mb + " MB)."; },
      badType: "This type of file cannot be sent.",
      offline: "We could not send your message. Please check your connection and try again.",
      sending: "Sending", sentFile: "File", today: "today", tomorrow: "tomorrow", newMessage: "New message",
      retry: "Send again",
    },
    zh: {
      title: "在线客服", open: "打开聊天", close: "关闭聊天", unread: "条未读消息",
      placeholder: "请输入消息", send: "发送", attach: "发送文件", you: "我",
      bot: "智能助手", agent: "客服", typing: "正在输入", someone: "客服",
      messages: "消息", drop: "松开以发送文件", rate: "请为本次服务评分",
      star: function (n) { return n + " 星"; },
      comment: "还有什么想说的吗？（选填）", submitRating: "提交评价",
      thanks: "感谢您的评价！", rated: "感谢您，我们已收到您的评价。",
      awayNow: "我们现在不在线。", backAt: function (t) { return "我们将于" + t + "回来。"; },
      leaveEmail: "留下您的邮箱，我们也会通过邮件回复您：",
      email: "您的邮箱", badEmail: "请输入有效的邮箱地址。",
      online: "我们通常在几分钟内回复。",
      tooBig: function (mb) { return "文件太大（上限 " + mb + " MB）。"; },
      badType: "不支持发送此类文件。",
      offline: "暂时无法发送，请检查网络后重试。",
      sending: "发送中", sentFile: "文件", today: "今天", tomorrow: "明天", newMessage: "新消息",
      retry: "重新发送",
    },
  };

  function pickLang() {
    var forced = (script.getAttribute("data-lang") || "").toLowerCase();
    if (forced === "zh" || forced === "en") return forced;
    var tags = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ""];
    return /^zh\b/i.test(tags[0] || "") ? "zh" : "en";
  }
  var lang = pickLang();
  var T = WORDS[lang];

  /* ---------------------------------------------------------------- DOM */

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function icon(path) {
    var s = document.createElementNS(SVG, "svg");
    s.setAttribute("viewBox", "0 0 24 24");
    s.setAttribute("aria-hidden", "true");
    s.setAttribute("focusable", "false");
    var p = document.createElementNS(SVG, "path");
    p.setAttribute("d", path);
    s.appendChild(p);
    return s;
  }
  var ICON_CHAT = "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 2-2z";
  var ICON_SEND = "M2 21l21-9L2 3v7l15 2-15 2z";
  var ICON_CLIP = "M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6h-1.5z";
  var ICON_BOT = "M12 2a2 2 0 0 1 1 3.7V7h5a3 3 0 0 1 3 3v8a3 3 0 0 1-3 3H6a3 3 0 0 1-3-3v-8a3 3 0 0 1 3-3h5V5.7A2 2 0 0 1 12 2zM8.5 12a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm7 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z";

  /* Text with its http(s) links made clickable, as DOM nodes. */
  var URL_RE = /\bhttps?:\/\/[^\s<>"'\u3000-\u303f\uff01-\uff5e]+/gi;
  function linkify(parent, text) {
    var last = 0, m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text))) {
      var url = m[0].replace(/[.,;:!?)\]}]+$/, "");
      if (!url) continue;
      var ok = false;
      try {
        var u = new URL(url);
        ok = u.protocol === "http:" || u.protocol === "https:";
      } catch (e) { ok = false; }
      if (!ok) continue;
      parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      var a = el("a");
      /* A long address breaks after its slashes and separators, not mid-word where it can help it. */
      url.split(/(?<=[\/?&=#])(?!\/)/).forEach(function (part, i) {
        if (i) a.appendChild(el("wbr"));
        a.appendChild(document.createTextNode(part));
      });
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      parent.appendChild(a);
      last = m.index + url.length;
      URL_RE.lastIndex = last;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  /* "9:05 AM" or "09:05" as the visitor's language writes a time. */
  var LOCALE = lang === "zh" ? "zh-CN" : /^en\b/i.test(navigator.language || "") ? navigator.language : "en";
  function clock(d) {
    var t = d.toLocaleTimeString(LOCALE, { hour: lang === "zh" ? "2-digit" : "numeric", minute: "2-digit" });
    /* Some ICU versions pad the hour of a 12-hour clock: "09:05 AM". */
    return /[AP]\.?M\.?$/i.test(t) ? t.replace(/^0(\d)/, "$1") : t;
  }

  function timeText(ms) {
    if (!ms) return "";
    var d = new Date(ms);
    var t = clock(d);
    var now = new Date();
    if (d.toDateString() === now.toDateString()) return t;
    return d.toLocaleDateString(LOCALE, { month: "short", day: "numeric" }) + " " + t;
  }

  /* When the team is back, in the visitor's time zone. */
  function backText(ms) {
    var d = new Date(ms), now = new Date();
    var loc = LOCALE;
    var t = clock(d);
    var tomorrow = new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1);
    if (d.toDateString() === now.toDateString()) return lang === "zh" ? T.today + " " + t : T.today + " at " + t;
    if (d.toDateString() === tomorrow.toDateString())
      return lang === "zh" ? T.tomorrow + " " + t : T.tomorrow + " at " + t;
    var day = d.toLocaleDateString(loc, { weekday: "long", month: "short", day: "numeric" });
    return lang === "zh" ? day + " " + t : "on " + day + " at " + t;
  }

  function sizeText(n) {
    if (n >= 1048576) return (n / 1048576).toFixed(1) + " MB";
    if (n >= 1024) return Math.round(n / 1024) + " KB";
    return n + " B";
  }

  /* ------------------------------------------------------------- network */

  function api(path) { return BASE + path; }

  function failure(r, j) {
    var e = new Error((j && j.error) || T.offline);
    e.status = r ? r.status : 0;
    e.code = j && j.code;
    return e;
  }

  function request(method, path, body, headers) {
    var opts = { method: method, headers: headers || {}, mode: "cors", credentials: "omit" };
    if (body !== undefined) opts.body = body;
    return fetch(api(path), opts).then(
      function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (!r.ok) throw failure(r, j);
          return j;
        });
      },
      function () { throw failure(null, null); }
    );
  }
  function postJSON(path, obj) {
    return request("POST", path, JSON.stringify(obj), { "Content-Type": "application/json" });
  }

  function load() {
    try { return JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { return {}; }
  }
  function save() {
    try { localStorage.setItem(KEY, JSON.stringify(store)); } catch (e) { /* private mode: this visit only */ }
  }
  var store = load();

  function newId() {
    var a = new Uint8Array(9);
    (window.crypto || {}).getRandomValues ? crypto.getRandomValues(a) : a.forEach(function (_, i) { a[i] = Math.random() * 256; });
    return Date.now().toString(36) + "-" + Array.prototype.map.call(a, function (b) { return (b % 36).toString(36); }).join("");
  }

  /* ------------------------------------------------------------- building */

  var host = document.createElement("helpwire-chat");
  host.setAttribute("style", "all: initial !important; display: block !important; position: static !important;");
  var shadow = host.attachShadow({ mode: "open" });
  var root = el("div", "root hidden");
  root.style.display = "none"; /* until widget.css is in: no unstyled flash */
  root.setAttribute("lang", lang);
  var link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = api("/widget.css");
  shadow.appendChild(link);
  shadow.appendChild(root);

  var launcher = el("button", "launcher");
  launcher.type = "button";
  launcher.setAttribute("aria-label", T.open);
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-controls", "hw-panel");
  launcher.appendChild(icon(ICON_CHAT));
  var badge = el("span", "badge hidden");
  badge.setAttribute("aria-hidden", "true");
  launcher.appendChild(badge);

  var panel = el("div", "panel hidden");
  panel.id = "hw-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-modal", "true");
  panel.setAttribute("aria-labelledby", "hw-title");

  var header = el("div", "header");
  var titles = el("div", "titles");
  var title = el("h2", "title", T.title);
  title.id = "hw-title";
  var status = el("p", "status", "");
  titles.appendChild(title);
  titles.appendChild(status);
  var closeBtn = el("button", "close", "\u00d7");
  closeBtn.type = "button";
  closeBtn.setAttribute("aria-label", T.close);
  header.appendChild(titles);
  header.appendChild(closeBtn);

  var log = el("div", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");
  log.setAttribute("aria-relevant", "additions");
  log.setAttribute("aria-label", T.messages);
  log.tabIndex = 0;

  var typing = el("div", "typing hidden");
  typing.setAttribute("aria-live", "polite");

  var away = el("div", "away hidden");
  var emailLabel = el("label", null, T.leaveEmail);
  emailLabel.setAttribute("for", "hw-email");
  var email = el("input", "email");
  email.id = "hw-email";
  email.type = "email";
  email.autocomplete = "email";
  email.maxLength = 254;
  email.placeholder = T.email;
  email.setAttribute("aria-label", T.email);
  away.appendChild(emailLabel);
  away.appendChild(email);

  var form = el("form", "composer");
  form.setAttribute("novalidate", "");
  var fileInput = el("input", "file-input");
  fileInput.type = "file";
  fileInput.id = "hw-file";
  fileInput.tabIndex = -1;
  fileInput.setAttribute("aria-hidden", "true");
  var attachBtn = el("button", "icon-button attach");
  attachBtn.type = "button";
  attachBtn.setAttribute("aria-label", T.attach);
  attachBtn.title = T.attach;
  attachBtn.appendChild(icon(ICON_CLIP));
  var input = el("textarea", "input");
  input.id = "hw-input";
  input.rows = 1;
  input.maxLength = 16000;
  input.placeholder = T.placeholder;
  input.setAttribute("aria-label", T.placeholder);
  var sendBtn = el("button", "icon-button send");
  sendBtn.type = "submit";
  sendBtn.setAttribute("aria-label", T.send);
  sendBtn.title = T.send;
  sendBtn.appendChild(icon(ICON_SEND));
  form.appendChild(fileInput);
  form.appendChild(attachBtn);
  form.appendChild(input);
  form.appendChild(sendBtn);

  var drop = el("div", "drop hidden", T.drop);

  panel.appendChild(header);
  panel.appendChild(log);
  panel.appendChild(typing);
  panel.appendChild(away);
  panel.appendChild(form);
  panel.appendChild(drop);
  root.appendChild(launcher);
  root.appendChild(panel);

  var color = script.getAttribute("data-color");
  var position = script.getAttribute("data-position");

  function applyLook(cfg) {
    var c = [color, cfg.color].filter(function (x) { return x && /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(x); })[0];
    if (c) {
      var p = palette(c);
      Object.keys(p).forEach(function (k) { root.style.setProperty("--hw-" + k, p[k]); });
    }
    var pos = position || cfg.position;
    root.classList.toggle("left", pos === "left");
    var t = cfg.title && (cfg.title[lang] || cfg.title.en);
    if (t) title.textContent = t;
  }
  /* Every colour of the widget from the operator's accent c ("#rgb" or
   * "#rrggbb"), by WCAG relative luminance: ink, the text on the accent
   * (white or near-black, whichever contrasts more); strong, the accent
   * darkened until it reads on white (4.5:1: links, icons, focus rings);
   * tint, line and soft, the accent faded into white (the bot's bubbles,
   * their borders, its avatar, the away box). widget.css has the same
   * for the default colour. */
  var WHITE = [255, 255, 255], INK_DARK = [17, 24, 39];
  function rgbOf(c) {
    var h = c.slice(1);
    if (h.length === 3) h = h.split("").map(function (x) { return x + x; }).join("");
    return [0, 2, 4].map(function (i) { return parseInt(h.slice(i, i + 2), 16); });
  }
  function luminance(rgb) {
    var w = [0.2126, 0.7152, 0.0722];
    return rgb.reduce(function (sum, v, i) {
      v /= 255;
      return sum + w[i] * (v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
    }, 0);
  }
  function contrast(a, b) {
    var x = luminance(a), y = luminance(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  }
  function mix(a, b, t) { return a.map(function (v, i) { return Math.round(v * (1 - t) + b[i] * t); }); }
  function hex(rgb) { return "#" + rgb.map(function (v) { return (v < 16 ? "0" : "") + v.toString(16); }).join(""); }
  function palette(c) {
    var a = rgbOf(c), strong = a;
    for (var t = 0.05; contrast(strong, WHITE) < 4.5 && t <= 1; t += 0.05) strong = mix(a, [0, 0, 0], t);
    return {
      color: hex(a), ink: contrast(WHITE, a) >= contrast(INK_DARK, a) ? "#ffffff" : hex(INK_DARK),
      strong: hex(strong), tint: hex(mix(a, WHITE, 0.92)), line: hex(mix(a, WHITE, 0.7)),
      soft: hex(mix(a, WHITE, 0.82)),
    };
  }

  /* ------------------------------------------------------------ messages */

  var last = 0;            // the last history id shown; the stream resumes after it
  var shown = {};          // history ids shown
  var pendingByCmid = {};  // the visitor's own messages, by client_message_id
  var unread = 0;
  var config = {};
  var greetingShown = false;

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function who(m) {
    if (m.kind === "visitor") return "visitor";
    if (m.kind === "agent_reply") return "agent";
    return "bot";
  }

  function attachmentNode(a) {
    var url = api("/api/attachments/" + encodeURIComponent(a.id) + "?session_id=" + encodeURIComponent(store.sid || ""));
    if (a.kind === "image" || /^image\//.test(a.mime_type || "")) {
      var link = el("a", "image-link");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      var img = el("img", "image");
      img.alt = a.name || T.sentFile;
      img.src = url;
      img.addEventListener("load", scrollDown);
      link.appendChild(img);
      return link;
    }
    if (a.kind === "location" && a.location) {
      var loc = a.location;
      var maps = "https://www.openstreetmap.org/?mlat=" + loc.latitude + "&mlon=" + loc.longitude;
      var l = el("a", "file", "\ud83d\udccd " + (loc.name || loc.latitude + ", " + loc.longitude));
      l.href = maps;
      l.target = "_blank";
      l.rel = "noopener noreferrer";
      return l;
    }
    var f = el("a", "file", "\ud83d\udcce " + (a.name || T.sentFile) + (a.size_bytes ? " (" + sizeText(a.size_bytes) + ")" : ""));
    f.href = url;
    f.target = "_blank";
    f.rel = "noopener noreferrer";
    return f;
  }

  function render(m) {
    var w = who(m);
    var row = el("div", "row " + w);
    row.setAttribute("data-kind", m.kind || "");
    if (w !== "visitor") {
      var av = el("div", "avatar");
      av.setAttribute("aria-hidden", "true");
      if (w === "bot") av.appendChild(icon(ICON_BOT));
      else av.textContent = (m.author_name || T.agent).trim().charAt(0).toUpperCase();
      row.appendChild(av);
    }
    var body = el("div", "body");
    var name = w === "visitor" ? T.you : w === "bot" ? T.bot : m.author_name || T.agent;
    var whoLine = el("div", "who", name);
    if (w === "visitor") whoLine.className = "who sr-only";
    body.appendChild(whoLine);
    var bubble = el("div", "bubble");
    /* A survey invitation is its stars (its text asks for a number or a
     * click on the survey page, which the stars replace). */
    var stars = m.kind === "survey_invitation" && m.survey_url;
    if (m.text && !stars) linkify(bubble, m.text);
    if (m.attachments && m.attachments.length) {
      var files = el("div", "files");
      m.attachments.forEach(function (a) { files.appendChild(attachmentNode(a)); });
      bubble.appendChild(files);
      /* Pictures alone are shown as themselves, not framed in a bubble. */
      if (!m.text && !stars && m.attachments.every(function (a) { return a.kind === "image" || /^image\//.test(a.mime_type || ""); }))
        bubble.classList.add("media");
    }
    if (stars) bubble.appendChild(survey(m.survey_url));
    body.appendChild(bubble);
    var time = el("time", "time", timeText(m.created_unix_ms));
    if (m.created_unix_ms) time.dateTime = new Date(m.created_unix_ms).toISOString();
    body.appendChild(time);
    row.appendChild(body);
    return row;
  }

  function add(m) {
    if (m.id > last) last = m.id; /* even one shown already (this tab sent it): the poll resumes after it */
    if (m.id && shown[m.id]) return;
    if (m.id) shown[m.id] = true;
    if (m.kind === "visitor" && m.client_message_id && pendingByCmid[m.client_message_id]) {
      var p = pendingByCmid[m.client_message_id];
      delete pendingByCmid[m.client_message_id];
      p.classList.remove("pending");
      return;
    }
    if (m.kind !== "visitor") hideTyping();
    log.appendChild(render(m));
    scrollDown();
    if (m.kind !== "visitor" && panel.classList.contains("hidden")) {
      unread++;
      badge.textContent = String(unread);
      badge.classList.remove("hidden");
      launcher.setAttribute("aria-label", T.open + " (" + unread + " " + T.unread + ")");
    }
  }

  function notice(text, isError) {
    var n = el("div", "notice" + (isError ? " error" : ""), text);
    n.setAttribute("role", isError ? "alert" : "status");
    log.appendChild(n);
    scrollDown();
    return n;
  }

  /* The operator's first line; outside business hours the away one (the
   * usual greeting may promise an answer within minutes), or none. */
  function showGreeting() {
    if (greetingShown) return;
    var away = config.hours && config.hours.open === false;
    var words = away ? config.away_greeting : config.greeting;
    var g = words && (words[lang] || words.en);
    if (!g) return;
    greetingShown = true;
    var row = render({ kind: "auto_reply", text: g });
    row.classList.add("greeting");
    row.querySelector(".time").textContent = "";
    log.insertBefore(row, log.firstChild);
  }

  /* The survey as stars in the chat; posts to /api/survey. */
  function survey(url) {
    var token = decodeURIComponent(String(url).split("?")[0].split("/").filter(Boolean).pop() || "");
    var box = el("div", "survey");
    var q = el("div", "question", T.rate);
    q.id = "hw-rate-" + Math.random().toString(36).slice(2);
    var stars = el("div", "stars");
    stars.setAttribute("role", "radiogroup");
    stars.setAttribute("aria-labelledby", q.id);
    var rating = 0;
    var comment = el("textarea", "comment");
    comment.maxLength = 2000;
    comment.placeholder = T.comment;
    comment.setAttribute("aria-label", T.comment);
    var submit = el("button", "submit", T.submitRating);
    submit.type = "button";
    submit.disabled = true;
    var buttons = [];
    function choose(n, focus) {
      rating = n;
      buttons.forEach(function (b, i) {
        b.classList.toggle("on", i < n);
        b.setAttribute("aria-checked", String(i + 1 === n));
        b.tabIndex = i + 1 === n ? 0 : -1;
      });
      if (focus) buttons[n - 1].focus();
      submit.disabled = false;
    }
    for (var i = 1; i <= 5; i++) {
      (function (n) {
        var b = el("button", "star", "\u2605");
        b.type = "button";
        b.setAttribute("role", "radio");
        b.setAttribute("aria-checked", "false");
        b.setAttribute("aria-label", T.star(n));
        b.setAttribute("data-rating", String(n));
        b.tabIndex = n === 1 ? 0 : -1;
        b.addEventListener("click", function () { choose(n, false); });
        b.addEventListener("keydown", function (e) {
          if (e.key === "ArrowRight" || e.key === "ArrowUp") { e.preventDefault(); choose(Math.min(5, n + 1), true); }
          if (e.key === "ArrowLeft" || e.key === "ArrowDown") { e.preventDefault(); choose(Math.max(1, n - 1), true); }
        });
        buttons.push(b);
        stars.appendChild(b);
      })(i);
    }
    var result = el("div", "result");
    result.setAttribute("role", "status");
    function done(text) {
      box.textContent = "";
      box.appendChild(el("div", "thanks", text));
    }
    submit.addEventListener("click", function () {
      if (!rating) return;
      submit.disabled = true;
      postJSON("/api/survey", { token: token, rating: rating, comment: comment.value }).then(
        function () { done(T.thanks); },
        function (e) {
          if (e.code === "already_answered") done(T.rated);
          else { result.textContent = e.message; submit.disabled = false; }
        }
      );
    });
    box.appendChild(q);
    box.appendChild(stars);
    box.appendChild(comment);
    box.appendChild(submit);
    box.appendChild(result);
    request("GET", "/api/survey?token=" + encodeURIComponent(token)).then(function (s) {
      if (s.answered) done(T.rated);
    }, function () {});
    return box;
  }

  /* ------------------------------------------------------------- typing */

  var typingTimer = null;
  function showTyping(ev) {
    typing.textContent = "";
    typing.appendChild(document.createTextNode((ev.author_name || T.someone) + " " + T.typing));
    var dots = el("span", "dots");
    dots.setAttribute("aria-hidden", "true");
    dots.appendChild(el("span"));
    dots.appendChild(el("span"));
    dots.appendChild(el("span"));
    typing.appendChild(dots);
    typing.classList.remove("hidden");
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, ev.duration_ms || TYPING_MS);
  }
  function hideTyping() {
    clearTimeout(typingTimer);
    typing.classList.add("hidden");
    typing.textContent = "";
  }

  /* --------------------------------------------------------- the stream */

  /* Server-Sent Events, or the long poll: without EventSource, with
   * data-transport="poll", or after the stream failed three times in a row
   * without bringing anything (the bridge refused it, or a proxy cut it:
   * the browser's own reconnecting counts too). */
  var es = null, polling = false, streamFailures = 0;
  var POLL_ONLY = script.getAttribute("data-transport") === "poll";

  function listen() {
    if (!store.sid || es || polling) return;
    if (POLL_ONLY || !window.EventSource || streamFailures >= 3) { poll(); return; }
    var stream = new EventSource(api("/api/events?mine=1&session_id=" + encodeURIComponent(store.sid) + "&after=" + last));
    es = stream;
    stream.onopen = function () { streamFailures = 0; };
    stream.onmessage = function (e) {
      streamFailures = 0;
      try { add(JSON.parse(e.data)); } catch (x) { /* not ours */ }
    };
    stream.addEventListener("typing", function (e) {
      streamFailures = 0;
      try { showTyping(JSON.parse(e.data)); } catch (x) { /* not ours */ }
    });
    stream.onerror = function () {
      if (es !== stream) return;
      streamFailures++;
      if (stream.readyState === EventSource.CLOSED || streamFailures >= 3) {
        stream.close();
        es = null;
        setTimeout(listen, streamFailures >= 3 ? 0 : 2000);
      }
    };
  }

  var typingSeen = null;
  function poll() {
    polling = true;
    var q = "/api/poll?mine=1&session_id=" + encodeURIComponent(store.sid) + "&after=" + last + "&wait_s=25";
    if (typingSeen !== null) q += "&typing_seen=" + typingSeen;
    request("GET", q).then(
      function (j) {
        (j.events || []).forEach(add);
        if (j.last_event_id > last) last = j.last_event_id;
        if (j.typing) showTyping(j.typing);
        if (j.typing_serial !== undefined) typingSeen = j.typing_serial;
        setTimeout(poll, 0);
      },
      function () { setTimeout(poll, 3000); }
    );
  }

  function loadHistory() {
    return request("GET", "/api/history?session_id=" + encodeURIComponent(store.sid) + "&after=" + last).then(function (j) {
      (j.events || []).forEach(add);
      if (j.more) return loadHistory();
    });
  }

  function session() {
    if (store.sid) return Promise.resolve(store.sid);
    return postJSON("/api/session", {}).then(function (j) {
      store.sid = j.session_id;
      save();
      listen();
      return store.sid;
    });
  }

  /* ------------------------------------------------------------ sending */

  function pendingRow(m) {
    var row = render(m);
    row.classList.add("pending");
    log.appendChild(row);
    scrollDown();
    return row;
  }

  function contactEmail() {
    if (away.classList.contains("hidden")) return null;
    var v = email.value.trim();
    if (!v) return null;
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v) || v.length > 254) return false;
    return v;
  }

  function sendText(text) {
    var mail = contactEmail();
    if (mail === false) {
      notice(T.badEmail, true);
      email.focus();
      return;
    }
    var cmid = newId();
    var row = pendingRow({ kind: "visitor", text: text, created_unix_ms: Date.now() });
    pendingByCmid[cmid] = row;
    var body = { text: text, client_message_id: cmid };
    if (mail) body.contact_email = mail;
    session().then(function (sid) {
      body.session_id = sid;
      return postJSON("/api/messages", body);
    }).then(function (j) {
      row.classList.remove("pending");
      if (j.history_id) { shown[j.history_id] = true; }
      delete pendingByCmid[cmid];
      if (mail) { store.email = mail; save(); }
      if (j.queued && j.notice) notice(j.notice, false);
    }, function (e) {
      delete pendingByCmid[cmid];
      row.classList.remove("pending");
      row.classList.add("failed");
      notice(e.message, true);
    });
  }

  function sendFile(file) {
    var max = config.max_upload_bytes || 0;
    if (max && file.size > max) { notice(T.tooBig(Math.floor(max / 1048576)), true); return; }
    var types = config.upload_types || [];
    if (types.length && !types.some(function (t) {
      return t.slice(-2) === "/*" ? (file.type || "").indexOf(t.slice(0, -1)) === 0 : file.type === t;
    })) { notice(T.badType, true); return; }
    var cmid = newId();
    var local = { id: "", kind: /^image\//.test(file.type) ? "image" : "document", name: file.name, size_bytes: file.size, mime_type: file.type };
    var row = pendingRow({ kind: "visitor", text: "", created_unix_ms: Date.now(), attachments: [] });
    var files = el("div", "files");
    if (local.kind === "image") {
      var img = el("img", "image");
      img.alt = file.name;
      img.src = URL.createObjectURL(file);
      files.appendChild(img);
    } else {
      files.appendChild(el("span", "file", "\ud83d\udcce " + file.name + " (" + sizeText(file.size) + ")"));
    }
    row.querySelector(".bubble").appendChild(files);
    if (local.kind === "image") row.querySelector(".bubble").classList.add("media");
    pendingByCmid[cmid] = row;
    session().then(function (sid) {
      var q = "/api/upload?session_id=" + encodeURIComponent(sid) + "&client_message_id=" + cmid + "&name=" + encodeURIComponent(file.name);
      var mail = contactEmail();
      if (mail) q += "&contact_email=" + encodeURIComponent(mail);
      return request("POST", q, file, { "Content-Type": file.type || "application/octet-stream" });
    }).then(function (j) {
      delete pendingByCmid[cmid];
      row.classList.remove("pending");
      if (j.history_id) shown[j.history_id] = true;
      if (j.queued && j.notice) notice(j.notice, false);
    }, function (e) {
      delete pendingByCmid[cmid];
      row.classList.remove("pending");
      row.classList.add("failed");
      notice(e.message, true);
    });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    input.style.height = "";
    sendText(text);
    input.focus();
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  input.addEventListener("input", function () {
    input.style.height = "";
    input.style.height = Math.min(120, input.scrollHeight + 2) + "px";
  });
  attachBtn.addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    Array.prototype.forEach.call(fileInput.files || [], sendFile);
    fileInput.value = "";
  });
  var dragDepth = 0;
  panel.addEventListener("dragenter", function (e) { e.preventDefault(); dragDepth++; drop.classList.remove("hidden"); });
  panel.addEventListener("dragover", function (e) { e.preventDefault(); });
  panel.addEventListener("dragleave", function () { if (--dragDepth <= 0) { dragDepth = 0; drop.classList.add("hidden"); } });
  panel.addEventListener("drop", function (e) {
    e.preventDefault();
    dragDepth = 0;
    drop.classList.add("hidden");
    Array.prototype.forEach.call((e.dataTransfer && e.dataTransfer.files) || [], sendFile);
  });

  /* ------------------------------------------------ opening and keyboard */

  function focusables() {
    return Array.prototype.filter.call(
      panel.querySelectorAll("button, a[href], textarea, input:not(.file-input), [tabindex='0']"),
      function (e) { return !e.disabled && e.offsetParent !== null && e.tabIndex >= 0; }
    );
  }

  function open() {
    panel.classList.remove("hidden");
    launcher.setAttribute("aria-expanded", "true");
    launcher.classList.add("hidden");
    unread = 0;
    badge.classList.add("hidden");
    launcher.setAttribute("aria-label", T.open);
    scrollDown();
    input.focus();
  }
  function close() {
    panel.classList.add("hidden");
    launcher.classList.remove("hidden");
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }
  launcher.addEventListener("click", open);
  closeBtn.addEventListener("click", close);
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { e.preventDefault(); close(); return; }
    if (e.key !== "Tab") return;
    var f = focusables();
    if (!f.length) return;
    var first = f[0], lastF = f[f.length - 1], active = shadow.activeElement;
    if (e.shiftKey && (active === first || f.indexOf(active) < 0)) { e.preventDefault(); lastF.focus(); }
    else if (!e.shiftKey && (active === lastF || f.indexOf(active) < 0)) { e.preventDefault(); first.focus(); }
  });

  /* ------------------------------------------------------------- startup */

  /* Outside business hours the header says so and when the team is back
   * (never "we answer within minutes"), and the panel asks for an email. */
  function applyHours(h) {
    if (!h || h.open !== false) {
      status.textContent = T.online;
      away.classList.add("hidden");
      panel.classList.remove("is-away");
      return;
    }
    status.textContent = T.awayNow + (h.next_open_unix_ms ? " " + T.backAt(backText(h.next_open_unix_ms)) : "");
    if (store.email) email.value = store.email;
    away.classList.remove("hidden");
    panel.classList.add("is-away");
  }

  /* Shown once its styles are in and the bridge answered: a site the
   * bridge does not serve (--allowed-origins), or a bridge that cannot be
   * reached, shows no chat rather than a broken one. */
  function start() {
    document.body.appendChild(host);
    var styled = new Promise(function (resolve) {
      link.addEventListener("load", resolve);
      link.addEventListener("error", resolve);
    });
    var configured = request("GET", "/api/widget-config?lang=" + lang).then(function (cfg) {
      config = cfg || {};
      applyLook(config);
      applyHours(config.hours);
    });
    Promise.all([styled, configured]).then(function () {
      root.classList.remove("hidden");
      root.style.display = "";
      showGreeting();
      if (script.getAttribute("data-open") === "true") open();
      if (store.sid) return loadHistory().catch(function () {});
    }).then(listen, function () { /* not served here: no chat */ });
    window.__helpwireWidget = {
      open: open, close: close, root: shadow,
      sessionId: function () { return store.sid || null; },
      transport: function () { return polling ? "poll" : es ? "events" : "none"; },
    };
  }

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
