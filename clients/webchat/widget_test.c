/* widget_test: the widget's embedded files, settings checks, origin rule
 * and upload types (clients/webchat/widget.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "clients/webchat/widget.h"

static void the_files_are_embedded_whole_with_their_types(void **unused)
{
    const char *type;
    const unsigned char *body;
    size_t len;
    assert_true(wc_widget_asset("/widget.js", &type, &body, &len));
    assert_string_equal(type, "text/javascript; charset=utf-8");
    assert_true(len > 1000);
    assert_int_equal(body[len], 0);
    assert_non_null(strstr((const char *)body, "attachShadow"));
    assert_true(wc_widget_asset("/widget.css", &type, &body, &len));
    assert_string_equal(type, "text/css; charset=utf-8");
    assert_non_null(strstr((const char *)body, "@media (max-width: 600px)"));
    assert_false(wc_widget_asset("/widget.js.map", &type, &body, &len));
    assert_false(wc_widget_asset("/", &type, &body, &len));
}

static void bad_settings_are_refused_naming_the_flag(void **unused)
{
    char err[300];
    wc_widget_settings ok = {.color = "#0a7",
                             .position = "left",
                             .allowed_origins = "https://a.example,http://b:8080",
                             .upload_types = "image/*,application/pdf"};
    assert_int_equal(wc_widget_check(&ok, err, sizeof err), 0);
    wc_widget_settings s = ok;
    s.color = "red";
    assert_int_equal(wc_widget_check(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, "--widget-color"));
    s = ok;
    s.position = "top";
    assert_int_equal(wc_widget_check(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, "--widget-position"));
    s = ok;
    s.allowed_origins = "https://a.example/path";
    assert_int_equal(wc_widget_check(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, "--allowed-origins"));
    s.allowed_origins = "a.example";
    assert_int_equal(wc_widget_check(&s, err, sizeof err), -1);
    s.allowed_origins = "https://a.example,,https://b.example";
    assert_int_equal(wc_widget_check(&s, err, sizeof err), -1);
    s = ok;
    s.upload_types = "image";
    assert_int_equal(wc_widget_check(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, "--upload-types"));
    char long_title[600];
    memset(long_title, 'x', sizeof long_title - 1);
    long_title[sizeof long_title - 1] = 0;
    s = ok;
    s.title_zh = long_title;
    assert_int_equal(wc_widget_check(&s, err, sizeof err), -1);
    assert_non_null(strstr(err, "--widget-title-zh"));
}

static void only_listed_origins_and_the_bridge_itself_are_served(void **unused)
{
    const char *list = "https://shop.example.com,http://127.0.0.1:8000";
    assert_true(wc_widget_origin_allowed(list, NULL, "chat.example.com"));
    assert_true(wc_widget_origin_allowed(list, "https://shop.example.com", "chat.example.com"));
    assert_true(wc_widget_origin_allowed(list, "HTTPS://SHOP.example.com", "chat.example.com"));
    assert_true(wc_widget_origin_allowed(list, "http://127.0.0.1:8000", "chat.example.com"));
    assert_false(wc_widget_origin_allowed(list, "http://127.0.0.1:8001", "chat.example.com"));
    assert_false(wc_widget_origin_allowed(list, "https://shop.example.com.evil.test", "chat.example.com"));
    assert_false(wc_widget_origin_allowed(list, "https://shop.example", "chat.example.com"));
    assert_true(wc_widget_origin_allowed(list, "https://chat.example.com", "chat.example.com"));
    assert_true(wc_widget_origin_allowed("*", "https://anyone.test", NULL));
    assert_true(wc_widget_origin_allowed(NULL, "https://anyone.test", NULL));
}

static void upload_types_match_exactly_or_by_family(void **unused)
{
    wc_widget_settings s = {.upload_types = "image/*,application/pdf"};
    assert_true(wc_widget_type_allowed(&s, "image/png"));
    assert_true(wc_widget_type_allowed(&s, "IMAGE/JPEG"));
    assert_true(wc_widget_type_allowed(&s, "application/pdf; name=x"));
    assert_false(wc_widget_type_allowed(&s, "application/pdfx"));
    assert_false(wc_widget_type_allowed(&s, "image"));
    assert_false(wc_widget_type_allowed(&s, "text/html"));
    assert_false(wc_widget_type_allowed(&s, NULL));
    wc_widget_settings any = {.upload_types = ""};
    assert_true(wc_widget_type_allowed(&any, "text/html"));
}

static void the_config_carries_hours_only_when_known(void **unused)
{
    wc_widget_settings s = {.color = "#123456",
                            .title_zh = "在线客服",
                            .away_greeting_en = "Leave us a message.",
                            .upload_types = "image/*,text/plain",
                            .max_upload_bytes = 1000};
    wc_widget_hours none = {0};
    json_t *j = wc_widget_config_json(&s, &none);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "color")), "#123456");
    assert_string_equal(json_string_value(json_object_get(j, "position")), "right");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "title"), "zh")), "在线客服");
    assert_int_equal(json_array_size(json_object_get(j, "upload_types")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "max_upload_bytes")), 1000);
    json_t *away = json_object_get(j, "away_greeting");
    assert_string_equal(json_string_value(json_object_get(away, "en")), "Leave us a message.");
    assert_string_equal(json_string_value(json_object_get(away, "zh")), "");
    assert_null(json_object_get(j, "hours"));
    json_decref(j);
    wc_widget_hours closed = {
        .known = true, .open = false, .next_open_unix_ms = 1700000000000, .time_zone = "Asia/Shanghai"};
    j = wc_widget_config_json(&s, &closed);
    json_t *h = json_object_get(j, "hours");
    assert_true(json_is_false(json_object_get(h, "open")));
    assert_int_equal(json_integer_value(json_object_get(h, "next_open_unix_ms")), 1700000000000);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_files_are_embedded_whole_with_their_types),
        cmocka_unit_test(bad_settings_are_refused_naming_the_flag),
        cmocka_unit_test(only_listed_origins_and_the_bridge_itself_are_served),
        cmocka_unit_test(upload_types_match_exactly_or_by_family),
        cmocka_unit_test(the_config_carries_hours_only_when_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
