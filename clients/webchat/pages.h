/*
 * pages: the web chat's two pages, plain HTML with inline JavaScript and
 * CSS (no build step, no external resources): the chat (session, send,
 * live replies over Server-Sent Events) and the survey rating page (reads
 * its token from the URL path and calls the bridge's JSON API). Both put
 * server text into the DOM with textContent only, never innerHTML.
 */
#ifndef WC_PAGES_H
#define WC_PAGES_H

/* The chat page served at "/". */
extern const char wc_chat_page[];

/* The rating page served at "/survey/<token>". */
extern const char wc_survey_page[];

#endif
