/*
 * demo: the demo data as tables (see demo.h), written in one durable
 * transaction.
 */
#include "server/ops/demo.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/store/records.h"

typedef struct {
    const char *name, *description;
    const char *keywords[24];
    Helpwire__V1__Priority priority;
    bool is_default; /* the fallback queue for text that matches no skill */
} demo_skill;

static const demo_skill skills[] = {
    {"technical",
     "Login, app and connection problems",
     {"error", "crash",   "bug",    "login",    "cannot log in", "app",         "connect", "connection",
      "slow",  "install", "update", "password", "broken",        "not working", "报错",    "错误",
      "闪退",  "崩溃",    "登录",   "无法登录", "连接",          "安装",        "更新"},
     HELPWIRE__V1__PRIORITY__PRIORITY_NORMAL,
     false},
    {"billing",
     "Payments, invoices and refunds",
     {"refund", "invoice", "charge", "charged", "payment", "bill", "billing", "price", "subscription",
      "money", "退款", "发票", "扣费", "付款", "支付", "账单", "价格", "订阅", "退钱"},
     HELPWIRE__V1__PRIORITY__PRIORITY_HIGH,
     false},
    {"general",
     "Everything else",
     {"question", "help", "info", "咨询", "帮助"},
     HELPWIRE__V1__PRIORITY__PRIORITY_LOW,
     true},
};

typedef struct {
    const char *id, *question, *answer, *locale;
    const char *alternates[6];
} demo_faq;

static const demo_faq faqs[] = {
    {"faq-reset-password",
     "如何重置密码",
     "在登录页点击“忘记密码”，输入注册邮箱，按邮件中的链接设置新密码。链接 30 分钟内有效。",
     "zh",
     {"怎么重置密码", "忘记密码怎么办", "How do I reset my password?", "I forgot my password"}},
    {"faq-hours",
     "工作时间",
     "我们的客服时间是周一至周五 9:00–18:00（北京时间），周末和节假日可留言，我们会在下一个工作日回复。",
     "zh",
     {"你们的工作时间是什么时候", "客服几点上班", "What are your opening hours?",
      "When is support available?"}},
    {"faq-refund-policy",
     "退款政策",
     "购买后 30 天内可申请全额退款：在“订单”页选择订单并点击“申请退款”，款项会在 5–7 个工作日内原路退回。",
     "zh",
     {"怎么申请退款", "退款规则是什么", "What is your refund policy?", "Can I get a refund?"}},
    {"faq-reset-password-en",
     "How do I reset my password?",
     "On the sign-in page choose \"Forgot password\", enter the email you registered with and follow the "
     "link we "
     "send you. The link is valid for 30 minutes.",
     "en",
     {"reset password", "forgot my password", "change my password"}},
    {"faq-hours-en",
     "What are your opening hours?",
     "Our support team works Monday to Friday, 9:00-18:00 (UTC+8). Leave a message at other times and we "
     "will "
     "answer on the next working day.",
     "en",
     {"opening hours", "when are you open", "support hours"}},
    {"faq-refund-policy-en",
     "What is your refund policy?",
     "You can ask for a full refund within 30 days of purchase: open Orders, pick the order and choose "
     "\"Request "
     "refund\". The money returns to your original payment method within 5-7 working days.",
     "en",
     {"refund policy", "can I get my money back", "how do refunds work"}},
};

typedef struct {
    const char *id, *title, *body, *locale;
} demo_article;

static const demo_article articles[] = {
    {"a-two-factor", "开启两步验证",
     "在“账户安全”中开启两步验证后，每次在新设备登录都需要输入手机验证码。如果换了手机号，请先在旧手机上关闭"
     "两步验证。",
     "zh"},
    {"a-app-crash", "应用闪退怎么办",
     "如果应用启动后闪退，请先更新到最新版本，再清除缓存后重启。仍然闪退时，请把手机型号和系统版本发给客服。",
     "zh"},
    {"a-invoice", "如何开具发票",
     "在“订单”页选择已完成的订单，点击“申请发票”，填写抬头和税号，电子发票会在 3 个工作日内发送到邮箱。",
     "zh"},
    {"a-change-email", "Changing the email address of your account",
     "Open Settings, then Account, and choose Change email. We send a confirmation link to the new address; "
     "the "
     "change takes effect once you click it.",
     "en"},
    {"a-app-crash-en", "The app crashes on start",
     "Update the app to the latest version, clear its cache and restart your phone. If it still crashes, "
     "send us "
     "your phone model and system version.",
     "en"},
    {"a-invoice-en", "Getting an invoice",
     "Open Orders, select a completed order and choose Request invoice. The PDF invoice arrives by email "
     "within 3 "
     "working days.",
     "en"},
};

typedef struct {
    const char *id, *name, *skills[3];
    unsigned capacity;
} demo_agent;

static const demo_agent agents[] = {
    {"alice", "Alice Wang", {"technical", "general"}, 5},
    {"bob", "Bob Li", {"billing", "general"}, 5},
    {"carol", "Carol Zhang", {"general"}, 5},
};

static size_t count(const char *const *list, size_t max)
{
    size_t n = 0;
    while (n < max && list[n])
        n++;
    return n;
}

/* The demo's business hours, as its FAQ "工作时间" says: Monday to Friday
 * 09:00-18:00 Beijing time, for the queues people staff (technical and
 * billing); "general" stays always open. Out of hours the acknowledgement
 * says when the team is back; tests that check its words either run the
 * server with --clock-file or check only what both texts share (the
 * ticket number). */
static const Helpwire__V1__TimeRange office_range = {PROTOBUF_C_MESSAGE_INIT(&helpwire__v1__time_range__descriptor),
                                                     9 * 60, 18 * 60};
static Helpwire__V1__TimeRange *const office_ranges[] = {(Helpwire__V1__TimeRange *)&office_range};
#define OFFICE_DAY(wd)                                                                                       \
    {PROTOBUF_C_MESSAGE_INIT(&helpwire__v1__day_schedule__descriptor), wd, 1,                              \
     (Helpwire__V1__TimeRange **)office_ranges}
static const Helpwire__V1__DaySchedule office_days[] = {OFFICE_DAY(1), OFFICE_DAY(2), OFFICE_DAY(3), OFFICE_DAY(4),
                                                        OFFICE_DAY(5)};
static Helpwire__V1__DaySchedule *const office_day_ptrs[] = {
    (Helpwire__V1__DaySchedule *)&office_days[0], (Helpwire__V1__DaySchedule *)&office_days[1],
    (Helpwire__V1__DaySchedule *)&office_days[2], (Helpwire__V1__DaySchedule *)&office_days[3],
    (Helpwire__V1__DaySchedule *)&office_days[4]};
static const Helpwire__V1__BusinessHours office_hours = {
    PROTOBUF_C_MESSAGE_INIT(&helpwire__v1__business_hours__descriptor), "Asia/Shanghai", 5,
    (Helpwire__V1__DaySchedule **)office_day_ptrs, 0, NULL};

static bool staffed(const char *skill)
{
    return strcmp(skill, "technical") == 0 || strcmp(skill, "billing") == 0;
}

typedef struct {
    bool *seeded;
    hw_demo_note_fn note;
    void *note_ctx;
} seed_ctx;

static int seed_data(hw_store_txn *w, bool *seeded)
{
    hw_arena *a = hw_store_txn_arena(w);
    hw_store_cursor cur = {0};
    Helpwire__V1__Skill **existing;
    size_t n_existing;
    *seeded = false;
    int rc = hw_store_skill_list(w, &cur, 1, a, &existing, &n_existing);
    if (rc != HW_OK || n_existing)
        return rc;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    for (size_t i = 0; rc == HW_OK && i < sizeof skills / sizeof skills[0]; i++) {
        Helpwire__V1__Skill s = HELPWIRE__V1__SKILL__INIT;
        s.name = (char *)skills[i].name;
        s.description = (char *)skills[i].description;
        s.keywords = (char **)skills[i].keywords;
        s.n_keywords = count(skills[i].keywords, 24);
        s.default_priority = skills[i].priority;
        s.is_default = skills[i].is_default;
        s.hours = staffed(s.name) ? (Helpwire__V1__BusinessHours *)&office_hours : NULL;
        rc = hw_store_skill_put(w, &s, HW_PUT_CREATE);
    }
    for (size_t i = 0; rc == HW_OK && i < sizeof faqs / sizeof faqs[0]; i++) {
        Helpwire__V1__Faq f = HELPWIRE__V1__FAQ__INIT;
        f.id = (char *)faqs[i].id;
        f.question = (char *)faqs[i].question;
        f.answer = (char *)faqs[i].answer;
        f.locale = (char *)faqs[i].locale;
        f.alternate_questions = (char **)faqs[i].alternates;
        f.n_alternate_questions = count(faqs[i].alternates, 6);
        f.version = 1;
        f.updated_unix_ms = now;
        rc = hw_store_faq_put(w, &f, HW_PUT_CREATE, 0);
    }
    for (size_t i = 0; rc == HW_OK && i < sizeof articles / sizeof articles[0]; i++) {
        Helpwire__V1__Article ar = HELPWIRE__V1__ARTICLE__INIT;
        ar.id = (char *)articles[i].id;
        ar.title = (char *)articles[i].title;
        ar.body = (char *)articles[i].body;
        ar.locale = (char *)articles[i].locale;
        ar.version = 1;
        ar.updated_unix_ms = now;
        rc = hw_store_article_put(w, &ar, HW_PUT_CREATE, 0);
    }
    for (size_t i = 0; rc == HW_OK && i < sizeof agents / sizeof agents[0]; i++) {
        Helpwire__V1__Agent ag = HELPWIRE__V1__AGENT__INIT;
        ag.id = (char *)agents[i].id;
        ag.name = (char *)agents[i].name;
        ag.skills = (char **)agents[i].skills;
        ag.n_skills = count(agents[i].skills, 3);
        ag.capacity = agents[i].capacity;
        ag.presence = HELPWIRE__V1__PRESENCE__PRESENCE_ONLINE;
        ag.version = 1;
        ag.updated_unix_ms = now;
        rc = hw_store_agent_put(w, &ag, HW_PUT_CREATE, 0);
    }
    *seeded = rc == HW_OK;
    return rc;
}

static int seed_fn(hw_store_txn *w, void *arg)
{
    seed_ctx *c = arg;
    int rc = seed_data(w, c->seeded);
    if (rc == HW_OK && *c->seeded && c->note)
        rc = c->note(c->note_ctx, w);
    if (rc != HW_OK)
        *c->seeded = false;
    return rc;
}

int hw_demo_seed_noted(hw_store *store, hw_demo_note_fn note, void *ctx, bool *seeded, char *err,
                       size_t errlen)
{
    *seeded = false;
    if (!hw_store_is_leader(store))
        return HW_OK; /* the leader seeds; its data reaches this replica */
    seed_ctx c = {.seeded = seeded, .note = note, .note_ctx = ctx};
    int rc = hw_store_write(store, seed_fn, &c);
    if (rc == HW_ENOTLEADER) { /* the leadership went meanwhile: as above */
        *seeded = false;
        return HW_OK;
    }
    if (rc != HW_OK)
        snprintf(err, errlen, "seeding the demo data failed: %s", hw_strerror(rc));
    return rc;
}

int hw_demo_seed(hw_store *store, bool *seeded, char *err, size_t errlen)
{
    return hw_demo_seed_noted(store, NULL, NULL, seeded, err, errlen);
}

/* The starter synonym sets (demo.h). Only words customers use for one
 * thing: a wrong synonym makes a wrong answer. Kept equal to
 * docs/synonyms-starter.jsonl (synonyms_test checks). */
static const hw_demo_synonym_set synonym_sets[] = {
    {"zh-hours", "zh", {"上班", "工作时间", "营业时间", "客服时间", "服务时间"}},
    {"zh-refund", "zh", {"退款", "退钱", "退费", "返款", "钱退回"}},
    {"zh-password", "zh", {"密码", "登录密码", "口令"}},
    {"zh-forgot", "zh", {"忘记", "忘了", "记不得", "想不起来", "记不住"}},
    {"zh-reset", "zh", {"重置", "重设", "找回"}},
    {"zh-renew", "zh", {"续费", "续订", "自动续费"}},
    {"zh-unsubscribe", "zh", {"退订", "取消订阅"}},
    {"zh-crash", "zh", {"闪退", "崩溃", "自动退出", "卡退"}},
    {"zh-two-factor", "zh", {"两步验证", "二次验证", "双重认证", "双重验证", "两步认证"}},
    {"zh-invoice", "zh", {"发票", "开票"}},
    {"zh-login", "zh", {"登录", "登陆", "登入"}},
    {"zh-account", "zh", {"账号", "账户", "帐号", "帐户"}},
    {"zh-username", "zh", {"用户名", "账号名", "登录名"}},
    {"zh-phone", "zh", {"手机号", "手机号码", "电话号码"}},
    {"zh-code", "zh", {"验证码", "校验码", "动态码"}},
    {"zh-email", "zh", {"邮箱", "电子邮箱", "邮箱地址", "邮件地址"}},
    {"zh-change", "zh", {"修改", "更改", "更换"}},
    {"zh-charge", "zh", {"扣费", "扣款", "扣钱"}},
    {"zh-double-charge", "zh", {"重复扣费", "重复扣款", "扣了两次", "多扣了"}},
    {"zh-pay", "zh", {"付款", "支付", "付钱"}},
    {"zh-close-account", "zh", {"注销账号", "删除账号", "销户"}},
    {"en-refund", "en", {"refund", "money back", "reimbursement"}},
    {"en-hours", "en", {"opening hours", "business hours", "working hours", "support hours", "office hours"}},
    {"en-unsubscribe", "en", {"unsubscribe", "cancel subscription", "end subscription"}},
    {"en-crash", "en", {"crash", "keeps closing", "force close"}},
    {"en-password", "en", {"password", "passcode"}},
    {"en-forgot", "en", {"forgot", "forgotten", "can't remember"}},
    {"en-reset-password", "en", {"reset password", "recover password", "restore password"}},
    {"en-invoice", "en", {"invoice", "receipt"}},
    {"en-two-factor", "en", {"two-factor authentication", "two-step verification", "2fa", "2-step verification", "multi-factor authentication"}},
    {"en-login", "en", {"login", "log in"}},
    {"en-email", "en", {"email", "e-mail"}},
    {"en-username", "en", {"username", "user name", "login name"}},
    {"en-phone", "en", {"phone number", "mobile number", "cell number"}},
    {"en-code", "en", {"verification code", "security code", "one-time code", "otp"}},
    {"en-double-charge", "en", {"charged twice", "double charged", "duplicate charge"}},
    {"en-close-account", "en", {"delete account", "close account", "deactivate account"}},
};

const hw_demo_synonym_set *hw_demo_synonym_sets(size_t *n)
{
    *n = sizeof synonym_sets / sizeof synonym_sets[0];
    return synonym_sets;
}
