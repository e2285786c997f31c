/*
 * pages: the web chat's two pages, plain HTML (no build step, no external
 * resources): the chat page, which only embeds the widget
 * (clients/webchat/widget/widget.js, opened at once) as any site would,
 * and the survey rating page for a survey link opened outside the chat
 * (reads its token from the URL path and calls the bridge's JSON API;
 * server text goes into the DOM with textContent only, never innerHTML).
 */
#ifndef WC_PAGES_H
#define WC_PAGES_H

/* The chat page served at "/": the widget, open. */
extern const char wc_chat_page[];

/* The rating page served at "/survey/<token>". */
extern const char wc_survey_page[];

#endif
