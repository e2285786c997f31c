/*
 * smalltalk: greetings, thanks, start commands, requests for a person and
 * bare ratings (see smalltalk.h for what each is).
 *
 * The text is normalized once into a stack buffer (utf8proc: NFKC, case
 * fold, default-ignorable code points such as the emoji variation selector
 * U+FE0F dropped), then read as UTF-8 in three steps:
 *   1. separators (white space, punctuation, a few emoji) are trimmed from
 *      both ends; nothing left is not small talk;
 *   2. a command ("/start", "/help") or a rating (a digit 1..5 with an
 *      optional unit, 一..五 with 星/颗星, a row of stars) must be all of
 *      what is left;
 *   3. otherwise the text must be covered, left to right, by phrases of
 *      the table below with only separators between them, taking the
 *      longest phrase at each position. A Latin phrase must end at a word
 *      boundary ("hi" does not match the start of "hint"); a Chinese one
 *      need not. The phrases' kinds decide: a strong request for a person
 *      wins, then thanks, then a greeting, then a weak request for a person
 *      ("客服" alone asks for one; "客服你好" greets); fillers alone are not
 *      small talk ("ok", "好的" route as before).
 * Every phrase in the table is written normalized (lower case, half-width).
 */
#include "server/domain/smalltalk.h"

#include <stdbool.h>
#include <string.h>

#include <utf8proc.h>

typedef enum {
    P_FILLER,
    P_GREETING,
    P_THANKS,
    P_HUMAN,      /* asks for a person whatever else is said */
    P_HUMAN_WEAK, /* asks for a person only when nothing greets or thanks */
} phrase_kind;

typedef struct {
    const char *text;
    phrase_kind kind;
} phrase;

static const phrase PHRASES[] = {
    /* greetings */
    {"hi", P_GREETING},
    {"hello", P_GREETING},
    {"hey", P_GREETING},
    {"hiya", P_GREETING},
    {"hallo", P_GREETING},
    {"howdy", P_GREETING},
    {"greetings", P_GREETING},
    {"good morning", P_GREETING},
    {"good afternoon", P_GREETING},
    {"good evening", P_GREETING},
    {"good day", P_GREETING},
    {"morning", P_GREETING},
    {"anyone there", P_GREETING},
    {"anybody there", P_GREETING},
    {"is anyone there", P_GREETING},
    {"is anybody there", P_GREETING},
    {"are you there", P_GREETING},
    {"你好", P_GREETING},
    {"您好", P_GREETING},
    {"你们好", P_GREETING},
    {"大家好", P_GREETING},
    {"嗨", P_GREETING},
    {"哈喽", P_GREETING},
    {"哈罗", P_GREETING},
    {"在吗", P_GREETING},
    {"在不在", P_GREETING},
    {"有人吗", P_GREETING},
    {"有人在吗", P_GREETING},
    {"早上好", P_GREETING},
    {"上午好", P_GREETING},
    {"中午好", P_GREETING},
    {"下午好", P_GREETING},
    {"晚上好", P_GREETING},
    /* thanks */
    {"thanks", P_THANKS},
    {"thank you", P_THANKS},
    {"thank u", P_THANKS},
    {"thankyou", P_THANKS},
    {"thx", P_THANKS},
    {"thnx", P_THANKS},
    {"tks", P_THANKS},
    {"ty", P_THANKS},
    {"many thanks", P_THANKS},
    {"much appreciated", P_THANKS},
    {"谢谢", P_THANKS},
    {"谢谢你", P_THANKS},
    {"谢谢您", P_THANKS},
    {"多谢", P_THANKS},
    {"谢啦", P_THANKS},
    {"谢了", P_THANKS},
    {"感谢", P_THANKS},
    {"非常感谢", P_THANKS},
    {"感谢您", P_THANKS},
    {"谢谢你的帮助", P_THANKS},
    {"谢谢您的帮助", P_THANKS},
    {"感谢你的帮助", P_THANKS},
    {"感谢您的帮助", P_THANKS},
    {"thanks for your help", P_THANKS},
    {"thanks for the help", P_THANKS},
    {"thank you for your help", P_THANKS},
    /* a person, please */
    {"人工", P_HUMAN},
    {"真人", P_HUMAN},
    {"人工服务", P_HUMAN},
    {"human", P_HUMAN},
    {"a human", P_HUMAN},
    {"agent", P_HUMAN},
    {"live agent", P_HUMAN},
    {"real agent", P_HUMAN},
    {"person", P_HUMAN},
    {"real person", P_HUMAN},
    {"live person", P_HUMAN},
    {"operator", P_HUMAN},
    {"representative", P_HUMAN},
    {"someone", P_HUMAN},
    {"somebody", P_HUMAN},
    {"a real human", P_HUMAN},
    {"customer service representative", P_HUMAN},
    {"客服", P_HUMAN_WEAK},
    {"customer service", P_HUMAN_WEAK},
    {"support", P_HUMAN_WEAK},
    /* fillers: words around the phrases that say nothing more */
    {"there", P_FILLER},
    {"all", P_FILLER},
    {"everyone", P_FILLER},
    {"guys", P_FILLER},
    {"team", P_FILLER},
    {"dear", P_FILLER},
    {"sir", P_FILLER},
    {"again", P_FILLER},
    {"so much", P_FILLER},
    {"very much", P_FILLER},
    {"a lot", P_FILLER},
    {"ok", P_FILLER},
    {"okay", P_FILLER},
    {"great", P_FILLER},
    {"please", P_FILLER},
    {"pls", P_FILLER},
    {"plz", P_FILLER},
    {"can i", P_FILLER},
    {"could i", P_FILLER},
    {"may i", P_FILLER},
    {"can you", P_FILLER},
    {"could you", P_FILLER},
    {"i want", P_FILLER},
    {"i want to", P_FILLER},
    {"i'd like to", P_FILLER},
    {"i would like to", P_FILLER},
    {"i need", P_FILLER},
    {"i need to", P_FILLER},
    {"let me", P_FILLER},
    {"talk to", P_FILLER},
    {"talk with", P_FILLER},
    {"speak to", P_FILLER},
    {"speak with", P_FILLER},
    {"chat with", P_FILLER},
    {"connect me to", P_FILLER},
    {"connect me with", P_FILLER},
    {"transfer me to", P_FILLER},
    {"get me", P_FILLER},
    {"a", P_FILLER},
    {"an", P_FILLER},
    {"to", P_FILLER},
    {"好的", P_FILLER},
    {"好", P_FILLER},
    {"嗯", P_FILLER},
    {"哦", P_FILLER},
    {"呀", P_FILLER},
    {"啊", P_FILLER},
    {"呢", P_FILLER},
    {"啦", P_FILLER},
    {"哈", P_FILLER},
    {"哈哈", P_FILLER},
    {"请", P_FILLER},
    {"请问", P_FILLER},
    {"我要", P_FILLER},
    {"我想", P_FILLER},
    {"我想要", P_FILLER},
    {"我找", P_FILLER},
    {"找", P_FILLER},
    {"转", P_FILLER},
    {"转接", P_FILLER},
    {"帮我", P_FILLER},
    {"给我", P_FILLER},
    {"麻烦", P_FILLER},
    {"你", P_FILLER},
    {"您", P_FILLER},
    {"了", P_FILLER},
    {"个", P_FILLER},
    {"跟我说", P_FILLER},
    {"跟我聊", P_FILLER},
    {"和我说", P_FILLER},
    {"和我聊", P_FILLER},
};

/* What sits between and around phrases (normalized: "！" is "!", "…" is
 * "..."). */
static const char *const SEPARATORS[] = {
    " ",  "\t", "\n", "\r", ",", ".",  "!",  "?", "~",    ";", ":", "(", ")", "^", "'", "\"",   "。",
    "、", "“",  "”",  "‘",  "’", "《", "》", "😊", "🙂", "👋", "🙏", "😀", "😃", "😄", "😁", "🤝", "❤",
};

static bool is_alnum(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static bool starts_with(const char *p, const char *end, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(end - p) >= n && memcmp(p, s, n) == 0;
}

/* The length of the separator at p, or 0. */
static size_t separator_at(const char *p, const char *end)
{
    for (size_t i = 0; i < sizeof SEPARATORS / sizeof *SEPARATORS; i++)
        if (starts_with(p, end, SEPARATORS[i]))
            return strlen(SEPARATORS[i]);
    return 0;
}

/* The length of the separator that ends just before end, or 0. */
static size_t separator_before(const char *begin, const char *end)
{
    for (size_t i = 0; i < sizeof SEPARATORS / sizeof *SEPARATORS; i++) {
        size_t n = strlen(SEPARATORS[i]);
        if ((size_t)(end - begin) >= n && memcmp(end - n, SEPARATORS[i], n) == 0)
            return n;
    }
    return 0;
}

/* The longest phrase at p that ends at a word boundary; NULL when none. */
static const phrase *phrase_at(const char *p, const char *end)
{
    const phrase *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < sizeof PHRASES / sizeof *PHRASES; i++) {
        const char *s = PHRASES[i].text;
        size_t n = strlen(s);
        if (n <= best_len || !starts_with(p, end, s))
            continue;
        if (is_alnum((unsigned char)s[n - 1]) && p + n < end && is_alnum((unsigned char)p[n]))
            continue; /* "hi" in "hint" */
        best = &PHRASES[i];
        best_len = n;
    }
    return best;
}

/* "/start", "/start payload", "/start@bot", "/help": all of [p, end). */
static bool is_command(const char *p, const char *end)
{
    static const char *const COMMANDS[] = {"/start", "/help"};
    for (size_t i = 0; i < sizeof COMMANDS / sizeof *COMMANDS; i++) {
        size_t n = strlen(COMMANDS[i]);
        if (starts_with(p, end, COMMANDS[i]) && (p + n == end || p[n] == ' ' || p[n] == '@'))
            return true;
    }
    return false;
}

static const char *skip_spaces(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* A bare rating as all of [p, end): 1..5, else 0. */
static uint32_t rating_of(const char *p, const char *end)
{
    static const char *const DIGIT_UNITS[] = {"", "分", "星", "颗星", "stars", "star", "/5", "out of 5"};
    static const char *const HAN_DIGITS[] = {"一", "二", "三", "四", "五"};
    static const char *const HAN_UNITS[] = {"星", "颗星"};
    if (p < end && *p >= '1' && *p <= '5') {
        uint32_t n = (uint32_t)(*p - '0');
        const char *q = skip_spaces(p + 1, end);
        for (size_t i = 0; i < sizeof DIGIT_UNITS / sizeof *DIGIT_UNITS; i++)
            if ((size_t)(end - q) == strlen(DIGIT_UNITS[i]) && starts_with(q, end, DIGIT_UNITS[i]))
                return n;
        return 0;
    }
    for (uint32_t d = 0; d < 5; d++) {
        if (!starts_with(p, end, HAN_DIGITS[d]))
            continue;
        const char *q = p + strlen(HAN_DIGITS[d]);
        for (size_t i = 0; i < sizeof HAN_UNITS / sizeof *HAN_UNITS; i++)
            if ((size_t)(end - q) == strlen(HAN_UNITS[i]) && starts_with(q, end, HAN_UNITS[i]))
                return d + 1;
        return 0;
    }
    /* A row of stars: filled ones (⭐ or ★) first, then empty ones (☆) up
     * to five in all ("★★★☆☆" is 3). */
    uint32_t filled = 0, empty = 0;
    while (p < end) {
        if (starts_with(p, end, "⭐") || starts_with(p, end, "★")) {
            if (empty)
                return 0;
            filled++;
            p += 3;
        } else if (starts_with(p, end, "☆")) {
            empty++;
            p += 3;
        } else if (*p == ' ') {
            p++;
        } else {
            return 0;
        }
    }
    return filled >= 1 && filled <= 5 && filled + empty <= 5 ? filled : 0;
}

/* Step 3: the phrase cover of [p, end). */
static hw_smalltalk_kind phrases_of(const char *p, const char *end)
{
    bool greeting = false, thanks = false, human = false, human_weak = false;
    while (p < end) {
        size_t sep = separator_at(p, end);
        if (sep) {
            p += sep;
            continue;
        }
        const phrase *ph = phrase_at(p, end);
        if (!ph)
            return HW_SMALLTALK_NONE; /* a word that is not small talk */
        greeting |= ph->kind == P_GREETING;
        thanks |= ph->kind == P_THANKS;
        human |= ph->kind == P_HUMAN;
        human_weak |= ph->kind == P_HUMAN_WEAK;
        p += strlen(ph->text);
    }
    if (human)
        return HW_SMALLTALK_HUMAN;
    if (thanks)
        return HW_SMALLTALK_THANKS;
    if (greeting)
        return HW_SMALLTALK_GREETING;
    return human_weak ? HW_SMALLTALK_HUMAN : HW_SMALLTALK_NONE;
}

hw_smalltalk_kind hw_smalltalk_classify(const char *text, size_t len, uint32_t *rating)
{
    /* Room for the code points (NFKC may expand a character to several)
     * and, after re-encoding in place, the UTF-8 and its terminator. */
    utf8proc_int32_t buf[HW_SMALLTALK_MAX_BYTES * 2 + 1];
    if (rating)
        *rating = 0;
    if (!text || len == 0 || len > HW_SMALLTALK_MAX_BYTES)
        return HW_SMALLTALK_NONE;
    const utf8proc_option_t opts =
        UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD | UTF8PROC_IGNORE;
    utf8proc_ssize_t n = utf8proc_decompose((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)len, buf,
                                            (utf8proc_ssize_t)(sizeof buf / sizeof *buf) - 1, opts);
    if (n <= 0 || n > HW_SMALLTALK_MAX_BYTES * 2) /* invalid UTF-8, or would not fit */
        return HW_SMALLTALK_NONE;
    n = utf8proc_normalize_utf32(buf, n, opts);
    if (n <= 0 || n > HW_SMALLTALK_MAX_CHARS)
        return HW_SMALLTALK_NONE;
    utf8proc_ssize_t bytes = utf8proc_reencode(buf, n, opts);
    if (bytes <= 0)
        return HW_SMALLTALK_NONE;
    const char *p = (const char *)buf, *end = p + bytes;

    for (size_t s; p < end && (s = separator_at(p, end)) != 0;)
        p += s;
    for (size_t s; end > p && (s = separator_before(p, end)) != 0;)
        end -= s;
    if (p == end)
        return HW_SMALLTALK_NONE; /* only punctuation and emoji */
    if (*p == '/')
        return is_command(p, end) ? HW_SMALLTALK_START : HW_SMALLTALK_NONE;
    uint32_t r = rating_of(p, end);
    if (r) {
        if (rating)
            *rating = r;
        return HW_SMALLTALK_RATING;
    }
    return phrases_of(p, end);
}

const char *hw_smalltalk_name(hw_smalltalk_kind kind)
{
    static const char *const NAMES[] = {
        [HW_SMALLTALK_NONE] = "",         [HW_SMALLTALK_GREETING] = "greeting",
        [HW_SMALLTALK_THANKS] = "thanks", [HW_SMALLTALK_START] = "start",
        [HW_SMALLTALK_HUMAN] = "human",   [HW_SMALLTALK_RATING] = "rating",
    };
    return (unsigned)kind < sizeof NAMES / sizeof *NAMES ? NAMES[kind] : "";
}

const char *hw_smalltalk_reply(hw_smalltalk_kind kind, const char *locale)
{
    bool zh = locale && strncmp(locale, "zh", 2) == 0;
    switch (kind) {
    case HW_SMALLTALK_GREETING:
    case HW_SMALLTALK_START:
        return zh ? "您好！请问有什么可以帮您？直接描述您的问题即可。"
                  : "Hi! How can we help? Just type your question.";
    case HW_SMALLTALK_THANKS:
        return zh ? "不客气！还有其他问题随时告诉我们。"
                  : "You're welcome! Let us know if there's anything else.";
    case HW_SMALLTALK_RATING:
        return zh ? "感谢您的评价！" : "Thanks for your rating!";
    default:
        return NULL;
    }
}
