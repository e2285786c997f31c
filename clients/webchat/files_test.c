/* files_test: attachment JSON both ways, file names, image signatures, and
 * that a visitor's history alone opens its files (clients/webchat/files.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "clients/lib/testdir.h"
#include "clients/webchat/files.h"

#define ANA "AnaAnaAnaAnaAnaAnaAnaAna"
#define BEN "BenBenBenBenBenBenBenBen"
#define ID_A "a-0123456789abcdef0123456789abcdef01234567"

static void metadata_goes_to_json_and_back(void **unused)
{
    Helpwire__V1__Attachment a = HELPWIRE__V1__ATTACHMENT__INIT;
    a.id = ID_A;
    a.kind = HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE;
    a.mime_type = "image/png";
    a.size_bytes = 1234;
    a.name = "receipt.png";
    a.sha256 = "ab";
    Helpwire__V1__Attachment *list[1] = {&a};
    json_t *j = wc_files_json(list, 1);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "kind")), "image");
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    Helpwire__V1__Attachment **back = NULL;
    size_t n = 0;
    assert_int_equal(wc_files_from_json(text, 10, &back, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(back[0]->id, ID_A);
    assert_int_equal(back[0]->kind, HELPWIRE__V1__ATTACHMENT_KIND__ATTACHMENT_KIND_IMAGE);
    assert_string_equal(back[0]->name, "receipt.png");
    assert_int_equal(back[0]->size_bytes, 1234);
    wc_files_free(back, n);
    assert_int_equal(wc_files_from_json(text, 0, &back, &n), -1); /* over max */
    free(text);
    assert_int_equal(wc_files_from_json("[]", 10, &back, &n), -1);
    assert_int_equal(wc_files_from_json("[{\"kind\":\"hologram\"}]", 10, &back, &n), -1);
    assert_int_equal(wc_files_from_json("not json", 10, &back, &n), -1);
}

static void names_lose_paths_and_control_characters(void **unused)
{
    char out[256];
    wc_files_clean_name("C:\\Users\\mei\\发票.pdf", out);
    assert_string_equal(out, "发票.pdf");
    wc_files_clean_name("../../etc/passwd", out);
    assert_string_equal(out, "passwd");
    wc_files_clean_name("a\nb\x7f.txt", out);
    assert_string_equal(out, "a_b_.txt");
    wc_files_clean_name("", out);
    assert_string_equal(out, "file");
    wc_files_clean_name(NULL, out);
    assert_string_equal(out, "file");
    wc_files_clean_name("dir/..", out);
    assert_string_equal(out, "file");
    char longname[400];
    memset(longname, 0, sizeof longname);
    for (int i = 0; i < 100; i++)
        memcpy(longname + 3 * i, "\xe5\x9b\xbe", 3); /* 图, 300 bytes */
    wc_files_clean_name(longname, out);
    assert_int_equal(strlen(out), 255); /* 85 whole characters */
}

static void images_must_be_what_they_say(void **unused)
{
    static const char png[] = "\x89PNG\r\n\x1a\n....";
    assert_true(wc_files_content_matches("image/png", png, sizeof png - 1));
    assert_false(wc_files_content_matches("image/png", "<svg>", 5));
    assert_false(wc_files_content_matches("image/jpeg", png, sizeof png - 1));
    assert_true(wc_files_content_matches("image/jpeg", "\xff\xd8\xff\xe0", 4));
    assert_true(wc_files_content_matches("image/webp", "RIFF\x10\0\0\0WEBPVP8 ", 16));
    assert_false(wc_files_content_matches("image/gif", "GI", 2));
    assert_true(wc_files_content_matches("application/pdf", "anything", 8));
}

static void only_the_visitor_s_own_history_opens_a_file(void **unused)
{
    char *dir = br_testdir_make("files");
    assert_non_null(dir);
    wc_history *h = NULL;
    char err[600];
    assert_int_equal(wc_history_open(&h, dir, 100, err, sizeof err), 0);
    uint64_t id;
    for (int i = 0; i < 150; i++) { /* more than one page of entries */
        json_t *e = json_pack("{s:s}", "text", "hello");
        assert_int_equal(wc_history_append(h, ANA, NULL, false, e, &id, err, sizeof err), 0);
        json_decref(e);
    }
    json_t *e =
        json_pack("{s:s, s:[{s:s, s:s}]}", "kind", "agent_reply", "attachments", "id", ID_A, "kind", "image");
    assert_int_equal(wc_history_append(h, ANA, "seq:9", true, e, &id, err, sizeof err), 0);
    json_decref(e);
    assert_true(wc_files_in_history(h, ANA, ID_A));
    assert_false(wc_files_in_history(h, BEN, ID_A));
    assert_false(wc_files_in_history(h, ANA, "a-ffff"));
    wc_history_close(h);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metadata_goes_to_json_and_back),
        cmocka_unit_test(names_lose_paths_and_control_characters),
        cmocka_unit_test(images_must_be_what_they_say),
        cmocka_unit_test(only_the_visitor_s_own_history_opens_a_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
