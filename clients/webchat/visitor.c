/*
 * visitor: the visitor's lines and the language rule (see visitor.h). One
 * table row per error, one column per language, so a reviewer reads every
 * line a visitor can see in one screen.
 */
#include "clients/webchat/visitor.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <grpc/status.h>

static const struct {
    const char *code;
    bool retry;
    const char *line[2]; /* en, zh */
} errors[WC_VISITOR_N] = {
    [WC_VISITOR_TRY_LATER] = {"unavailable",
                              true,
                              {"We can't take your message right now. Please try again in a moment.",
                               "暂时无法接收您的消息，请稍后再试。"}},
    [WC_VISITOR_OUR_FAULT] = {"internal",
                              true,
                              {"Sorry, something went wrong on our side. Please try again later.",
                               "抱歉，我们这边出了点问题，请稍后再试。"}},
    [WC_VISITOR_BAD_REQUEST] = {"bad_request",
                                false,
                                {"Sorry, this page ran into a problem. Please reload it and try again.",
                                 "页面出了点问题，请刷新后重试。"}},
    [WC_VISITOR_TOO_LONG] = {"too_long",
                             false,
                             {"Your message is too long. Please shorten it and send it again.",
                              "您的消息太长，请缩短后重新发送。"}},
    [WC_VISITOR_REFUSED] = {"refused",
                            false,
                            {"We couldn't accept this message. Please change it and send it again.",
                             "无法接收这条消息，请修改后重新发送。"}},
    [WC_VISITOR_LINK_INVALID] = {"not_found",
                                 false,
                                 {"This link is not valid. Please check it or ask us for a new one.",
                                  "该链接无效，请检查链接或向我们索取新的链接。"}},
    [WC_VISITOR_ANSWERED] = {"already_answered",
                             false,
                             {"Thank you, we already have your rating.", "感谢您，我们已收到您的评价。"}},
    [WC_VISITOR_CLOSED] = {"closed",
                           false,
                           {"This survey is closed. Thank you all the same.", "该评价已关闭，仍然感谢您。"}},
    [WC_VISITOR_BAD_RATING] = {"bad_rating",
                               false,
                               {"Please choose a rating from 1 to 5.", "请选择 1 到 5 的评分。"}},
    [WC_VISITOR_NO_PAGE] = {"no_such_page", false, {"This page does not exist.", "该页面不存在。"}},
    [WC_VISITOR_BAD_EMAIL] = {"bad_email",
                              false,
                              {"Please enter a valid email address.", "请输入有效的邮箱地址。"}},
    [WC_VISITOR_FILE_TOO_BIG] = {"file_too_big",
                                 false,
                                 {"This file is too large to send. Please send a smaller one.",
                                  "文件太大，无法发送，请换一个较小的文件。"}},
    [WC_VISITOR_FILE_TYPE] = {"file_type",
                              false,
                              {"This type of file cannot be sent here. Please send another kind of file.",
                               "此处不支持发送这类文件，请换一种文件发送。"}},
    [WC_VISITOR_FILE_EMPTY] = {"file_empty", false, {"This file is empty.", "该文件是空的。"}},
    [WC_VISITOR_NO_FILE] = {"no_such_file", false, {"This file is not available.", "该文件无法查看。"}},
    [WC_VISITOR_ORIGIN] = {"origin_not_allowed",
                           false,
                           {"This chat cannot be used on this site.", "此网站无法使用该聊天。"}},
};

static const struct {
    const char *code;
    const char *line[2]; /* en, zh */
} notices[WC_VISITOR_NOTICE_N] = {
    [WC_VISITOR_QUEUED] = {"queued",
                           {"We have received your message and will answer you here as soon as we can.",
                            "我们已收到您的消息，会尽快在这里回复您。"}},
};

const char *wc_visitor_notice_line(wc_visitor_notice n, wc_lang lang)
{
    if ((unsigned)n >= WC_VISITOR_NOTICE_N)
        n = WC_VISITOR_QUEUED;
    return notices[n].line[lang == WC_LANG_ZH ? 1 : 0];
}

const char *wc_visitor_notice_code(wc_visitor_notice n)
{
    return notices[(unsigned)n < WC_VISITOR_NOTICE_N ? n : WC_VISITOR_QUEUED].code;
}

/* helpwired's status codes as the visitor reads them. Only the statuses a
 * bridge retries (route.h: UNAVAILABLE, DEADLINE_EXCEEDED,
 * RESOURCE_EXHAUSTED, ABORTED) ask the page to send again; codes not
 * listed are the bridge's or helpwired's own trouble, which sending again
 * will not fix: WC_VISITOR_OUR_FAULT, 502. The visitor is on the line, so
 * a message refused for good is not kept: the failure is visible at once,
 * with the text still in the page. (The statuses that may pass are not
 * shown at all when the bridge can spool the message: the visitor gets
 * the WC_VISITOR_QUEUED notice instead; see main.c.) */
static const struct {
    int code;
    wc_visitor_error e;
    unsigned http;
} by_status[] = {
    {GRPC_STATUS_UNAVAILABLE, WC_VISITOR_TRY_LATER, 503},
    {GRPC_STATUS_DEADLINE_EXCEEDED, WC_VISITOR_TRY_LATER, 503},
    {GRPC_STATUS_RESOURCE_EXHAUSTED, WC_VISITOR_TRY_LATER, 503},
    {GRPC_STATUS_ABORTED, WC_VISITOR_TRY_LATER, 503},
    {GRPC_STATUS_INVALID_ARGUMENT, WC_VISITOR_REFUSED, 400},
    {GRPC_STATUS_OUT_OF_RANGE, WC_VISITOR_REFUSED, 400},
    {GRPC_STATUS_NOT_FOUND, WC_VISITOR_LINK_INVALID, 404},
    {GRPC_STATUS_ALREADY_EXISTS, WC_VISITOR_ANSWERED, 409},
    {GRPC_STATUS_FAILED_PRECONDITION, WC_VISITOR_CLOSED, 410},
};

wc_visitor_error wc_visitor_from_status(int grpc_code, unsigned *http)
{
    for (size_t i = 0; i < sizeof by_status / sizeof by_status[0]; i++)
        if (by_status[i].code == grpc_code) {
            *http = by_status[i].http;
            return by_status[i].e;
        }
    *http = 502;
    return WC_VISITOR_OUR_FAULT;
}

const char *wc_visitor_line(wc_visitor_error e, wc_lang lang)
{
    if ((unsigned)e >= WC_VISITOR_N)
        e = WC_VISITOR_OUR_FAULT;
    return errors[e].line[lang == WC_LANG_ZH ? 1 : 0];
}

const char *wc_visitor_code(wc_visitor_error e)
{
    return (unsigned)e < WC_VISITOR_N ? errors[e].code : errors[WC_VISITOR_OUR_FAULT].code;
}

bool wc_visitor_retry(wc_visitor_error e)
{
    return (unsigned)e < WC_VISITOR_N && errors[e].retry;
}

static bool is_han(uint32_t cp)
{
    return (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x20000 && cp <= 0x2FA1F);
}

bool wc_visitor_has_han(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    if (!p)
        return false;
    while (*p) {
        uint32_t cp;
        int n;
        if (*p < 0x80) {
            p++;
            continue;
        } else if ((*p & 0xE0) == 0xC0) {
            cp = *p & 0x1F;
            n = 1;
        } else if ((*p & 0xF0) == 0xE0) {
            cp = *p & 0x0F;
            n = 2;
        } else if ((*p & 0xF8) == 0xF0) {
            cp = *p & 0x07;
            n = 3;
        } else {
            p++; /* a stray continuation byte */
            continue;
        }
        int k = 1;
        for (; k <= n && (p[k] & 0xC0) == 0x80; k++)
            cp = (cp << 6) | (p[k] & 0x3F);
        if (k > n && is_han(cp))
            return true;
        p += k;
    }
    return false;
}

/* Whether the first tag of an Accept-Language value is zh or zh-*. */
static bool prefers_zh(const char *al)
{
    if (!al)
        return false;
    al += strspn(al, " \t");
    return strncasecmp(al, "zh", 2) == 0 && (al[2] == '\0' || strchr("-_;, \t", al[2]));
}

wc_lang wc_visitor_lang(const char *accept_language, const char *text)
{
    if (wc_visitor_has_han(text))
        return WC_LANG_ZH;
    return prefers_zh(accept_language) ? WC_LANG_ZH : WC_LANG_EN;
}
