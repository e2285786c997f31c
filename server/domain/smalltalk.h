/*
 * smalltalk: tells apart the messages that are not a question for the
 * knowledge base: a greeting ("hi", "你好，在吗"), thanks ("thank you!",
 * "好的谢谢"), a channel's start command ("/start", "/start ref-42",
 * "/help"), a request for a person ("转人工", "can I talk to a human
 * please") and a bare survey rating ("5", "5分", "4 stars", "⭐⭐⭐⭐",
 * "五星", "5/5"). Route (router.c) answers the first three itself, opens a
 * ticket for the fourth and records the fifth on the customer's pending
 * survey.
 *
 * A message is small talk only when all of it is: every word of it must be
 * one of the tables' phrases (or a filler such as "there", "please",
 * "好的", "我要"), so "hi, how do I reset my password?" and "你好，我要退款"
 * are not small talk and route as questions. Matching is on the NFKC,
 * case-folded text (full-width "！？５" are "!?5"), with punctuation and a
 * few emoji (😊🙂👋🙏) between and around the phrases ignored. Messages
 * longer than HW_SMALLTALK_MAX_BYTES bytes or, once normalized,
 * HW_SMALLTALK_MAX_CHARS characters are never small talk, so the cost is
 * bounded whatever the text.
 *
 * Pure functions on constant tables: no allocation, thread-safe.
 */
#ifndef HW_SMALLTALK_H
#define HW_SMALLTALK_H

#include <stddef.h>
#include <stdint.h>

#define HW_SMALLTALK_MAX_BYTES 256
#define HW_SMALLTALK_MAX_CHARS 64

typedef enum hw_smalltalk_kind {
    HW_SMALLTALK_NONE = 0, /* a real message: route it as a question */
    HW_SMALLTALK_GREETING,
    HW_SMALLTALK_THANKS,
    HW_SMALLTALK_START, /* "/start [payload]", "/start@bot", "/help" */
    HW_SMALLTALK_HUMAN, /* asks for a person */
    HW_SMALLTALK_RATING /* a bare rating 1..5 */
} hw_smalltalk_kind;

/* Classifies text[0..len) (UTF-8; invalid UTF-8 is HW_SMALLTALK_NONE).
 * For HW_SMALLTALK_RATING, *rating (may be NULL) receives 1..5; otherwise
 * it is set to 0. */
hw_smalltalk_kind hw_smalltalk_classify(const char *text, size_t len, uint32_t *rating);

/* "greeting", "thanks", "start", "human", "rating"; "" for NONE. Static. */
const char *hw_smalltalk_name(hw_smalltalk_kind kind);

/* The reply to a greeting, thanks or start command (a greeting offering
 * help), or the thanks for a recorded rating (HW_SMALLTALK_RATING): in
 * Chinese when locale starts with "zh", else in English. NULL for NONE and
 * HUMAN (the ticket's acknowledgement answers those). Static. */
const char *hw_smalltalk_reply(hw_smalltalk_kind kind, const char *locale);

#endif
