/*
 * fuzz survey: survey tokens as the survey page and the bridges pass them
 * on (SubmitSurvey, GetSurvey). The first byte gives the rating (modulo
 * 7: 0 and 6 are out of range), the rest, cut at its first NUL, is the
 * token. No survey exists in the store, so the answer is known: a token
 * shaped like the ones handed out (22 to 128 characters of URL-safe
 * base64) is NOT_FOUND (SubmitSurvey with a bad rating may say
 * INVALID_ARGUMENT first), anything else INVALID_ARGUMENT; the handler
 * never crashes or answers otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpwire/v1/surveys.pb-c.h"
#include "tests/fuzz/fuzz_app.h"

static const hw_method *g_submit, *g_get;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fz_app();
    g_submit = fz_method("/helpwire.v1.Surveys/SubmitSurvey");
    g_get = fz_method("/helpwire.v1.Surveys/GetSurvey");
    if (!g_submit || !g_get)
        abort();
    return 0;
}

static bool shaped(const char *t)
{
    size_t n = strlen(t);
    if (n < 22 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= '0' && t[i] <= '9') ||
              t[i] == '-' || t[i] == '_'))
            return false;
    return true;
}

static void expect(const char *what, fz_answer a, grpc_status_code want, grpc_status_code also)
{
    if (a.code != want && a.code != also) {
        fprintf(stderr, "fuzz survey: %s answered %d (%s), expected %d\n", what, a.code, a.msg, want);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (!g_submit)
        LLVMFuzzerInitialize(NULL, NULL);
    char *token = malloc(size);
    if (!token)
        abort();
    memcpy(token, data + 1, size - 1);
    token[size - 1] = '\0';
    bool ok = shaped(token);
    uint32_t rating = data[0] % 7;

    Helpwire__V1__SubmitSurveyRequest s = HELPWIRE__V1__SUBMIT_SURVEY_REQUEST__INIT;
    s.token = token;
    s.rating = rating;
    fz_answer a = fz_run(g_submit, &s.base, fz_principal(false));
    expect("SubmitSurvey", a, ok ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_INVALID_ARGUMENT,
           GRPC_STATUS_INVALID_ARGUMENT);

    Helpwire__V1__GetSurveyRequest g = HELPWIRE__V1__GET_SURVEY_REQUEST__INIT;
    g.token = token;
    a = fz_run(g_get, &g.base, fz_principal(false));
    expect("GetSurvey", a, ok ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_INVALID_ARGUMENT,
           ok ? GRPC_STATUS_NOT_FOUND : GRPC_STATUS_INVALID_ARGUMENT);
    free(token);
    return 0;
}
