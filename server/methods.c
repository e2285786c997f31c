/*
 * methods: the one table that wires RPCs to handlers (see methods.h). The
 * fifth column says who may call: PUBLIC needs no token; otherwise the
 * caller's token role must be in the set (admin may call everything).
 */
#include "server/methods.h"

#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "helpwire/v1/admin.pb-c.h"
#include "helpwire/v1/agents.pb-c.h"
#include "helpwire/v1/cluster.pb-c.h"
#include "helpwire/v1/customers.pb-c.h"
#include "helpwire/v1/knowledge.pb-c.h"
#include "helpwire/v1/reports.pb-c.h"
#include "helpwire/v1/router.pb-c.h"
#include "helpwire/v1/sla.pb-c.h"
#include "helpwire/v1/tickets.pb-c.h"
#include "server/domain/app.h"
#include "server/domain/auth.h"
#include "server/domain/knowledge.h"
#include "server/domain/outbox.h"
#include "server/domain/outbox_failed.h"
#include "server/domain/admin.h"
#include "server/domain/attachments.h"
#include "server/domain/agents.h"
#include "server/domain/cluster.h"
#include "server/domain/customers.h"
#include "server/domain/privacy.h"
#include "server/domain/reports.h"
#include "server/domain/router.h"
#include "server/domain/schedule.h"
#include "server/domain/signals.h"
#include "server/domain/sla.h"
#include "server/domain/suggestions.h"
#include "server/domain/surveys.h"
#include "server/domain/synonyms.h"
#include "server/domain/tickets.h"
#include "server/net/health.h"
#include "server/net/reflection.h"

#define PUBLIC HW_ALLOW_PUBLIC
#define BRIDGE (HW_ALLOW_BRIDGE | HW_ALLOW_ADMIN)
#define AGENT (HW_ALLOW_AGENT | HW_ALLOW_ADMIN)
#define ADMIN HW_ALLOW_ADMIN

#define RPC(path, req, reply, handler, allow, streaming)                                                     \
    {                                                                                                        \
        path, &req##__descriptor, &reply##__descriptor, handler, allow, streaming, false, false, false       \
    }
/* A unary method that changes the store: forwarded to the leader by a
 * replica that is not (net.h, hw_net_cluster). */
#define WRITE(path, req, reply, handler, allow)                                                              \
    {                                                                                                        \
        path, &req##__descriptor, &reply##__descriptor, handler, allow, false, false, false, true            \
    }
/* A unary method served by the leader though it writes nothing (channel
 * signals: the bridges' Outbox streams are there): relayed like a write. */
#define LEADER(path, req, reply, handler, allow) WRITE(path, req, reply, handler, allow)
/* Bidirectional streaming: handler runs once per request message. */
#define BIDI(path, req, reply, handler, allow)                                                               \
    {                                                                                                        \
        path, &req##__descriptor, &reply##__descriptor, handler, allow, true, true, false, false             \
    }

/* The net layer's services know nothing of hw_app: these find their state. */
static void health_check(hw_call *call, const ProtobufCMessage *request, void *app)
{
    hw_health_check(call, request, ((hw_app *)app)->health);
}

static void health_watch(hw_call *call, const ProtobufCMessage *request, void *app)
{
    hw_health_watch(call, request, ((hw_app *)app)->health);
}

static void reflection_info(hw_call *call, const ProtobufCMessage *request, void *app)
{
    hw_reflection_info(call, request, ((hw_app *)app)->reflection);
}

/* Health: public, and answered during the drain's grace period too. */
#define HEALTH(path, handler, streaming)                                                                     \
    {                                                                                                        \
        path, &grpc__health__v1__health_check_request__descriptor,                                           \
            &grpc__health__v1__health_check_response__descriptor, handler, PUBLIC, streaming, false, true, false\
    }

static const hw_method table[] = {
    HEALTH("/grpc.health.v1.Health/Check", health_check, false),
    HEALTH("/grpc.health.v1.Health/Watch", health_watch, true),
    /* Reflection under both names, one implementation: grpc.reflection.v1
     * has v1alpha's messages and field numbers, so v1alpha's C code reads
     * and writes the same bytes (reflection_test checks the two .proto
     * files stay alike). */
    BIDI("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
         grpc__reflection__v1alpha__server_reflection_request,
         grpc__reflection__v1alpha__server_reflection_response, reflection_info, PUBLIC),
    BIDI("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
         grpc__reflection__v1alpha__server_reflection_request,
         grpc__reflection__v1alpha__server_reflection_response, reflection_info, PUBLIC),

    RPC("/helpwire.v1.Knowledge/Search", helpwire__v1__search_request, helpwire__v1__search_reply,
        hw_knowledge_search, AGENT, false),
    RPC("/helpwire.v1.Knowledge/Answer", helpwire__v1__answer_request, helpwire__v1__answer_reply,
        hw_knowledge_answer, AGENT, false),
    WRITE("/helpwire.v1.Knowledge/PutArticle", helpwire__v1__put_article_request, helpwire__v1__article,
        hw_knowledge_put_article, ADMIN),
    RPC("/helpwire.v1.Knowledge/GetArticle", helpwire__v1__get_article_request, helpwire__v1__article,
        hw_knowledge_get_article, AGENT, false),
    WRITE("/helpwire.v1.Knowledge/DeleteArticle", helpwire__v1__delete_article_request,
        helpwire__v1__delete_article_reply, hw_knowledge_delete_article, ADMIN),
    RPC("/helpwire.v1.Knowledge/ListArticles", helpwire__v1__list_articles_request,
        helpwire__v1__list_articles_reply, hw_knowledge_list_articles, AGENT, false),
    WRITE("/helpwire.v1.Knowledge/PutFaq", helpwire__v1__put_faq_request, helpwire__v1__faq,
        hw_knowledge_put_faq, ADMIN),
    WRITE("/helpwire.v1.Knowledge/DeleteFaq", helpwire__v1__delete_faq_request, helpwire__v1__delete_faq_reply,
        hw_knowledge_delete_faq, ADMIN),
    RPC("/helpwire.v1.Knowledge/ListFaqs", helpwire__v1__list_faqs_request, helpwire__v1__list_faqs_reply,
        hw_knowledge_list_faqs, AGENT, false),
    RPC("/helpwire.v1.Knowledge/ListSuggestions", helpwire__v1__list_suggestions_request,
        helpwire__v1__list_suggestions_reply, hw_suggestions_list, ADMIN, false),
    WRITE("/helpwire.v1.Knowledge/ApproveSuggestion", helpwire__v1__approve_suggestion_request,
        helpwire__v1__phrasing_suggestion, hw_suggestions_approve, ADMIN),
    WRITE("/helpwire.v1.Knowledge/RejectSuggestion", helpwire__v1__reject_suggestion_request,
        helpwire__v1__phrasing_suggestion, hw_suggestions_reject, ADMIN),
    WRITE("/helpwire.v1.Knowledge/PutSynonymSet", helpwire__v1__put_synonym_set_request, helpwire__v1__synonym_set,
        hw_synonyms_put, ADMIN),
    WRITE("/helpwire.v1.Knowledge/DeleteSynonymSet", helpwire__v1__delete_synonym_set_request,
        helpwire__v1__delete_synonym_set_reply, hw_synonyms_delete, ADMIN),
    RPC("/helpwire.v1.Knowledge/ListSynonymSets", helpwire__v1__list_synonym_sets_request,
        helpwire__v1__list_synonym_sets_reply, hw_synonyms_list, AGENT, false),

    RPC("/helpwire.v1.Outbox/Subscribe", helpwire__v1__subscribe_request, helpwire__v1__outbound_message,
        hw_outbox_subscribe, BRIDGE, true),
    WRITE("/helpwire.v1.Outbox/Ack", helpwire__v1__ack_request, helpwire__v1__ack_reply, hw_outbox_ack, BRIDGE),
    RPC("/helpwire.v1.Outbox/ListFailed", helpwire__v1__list_failed_request, helpwire__v1__list_failed_reply,
        hw_outbox_failed_list, ADMIN, false),
    WRITE("/helpwire.v1.Outbox/RetryFailed", helpwire__v1__retry_failed_request,
        helpwire__v1__retry_failed_reply, hw_outbox_failed_retry, ADMIN),

    WRITE("/helpwire.v1.Surveys/SubmitSurvey", helpwire__v1__submit_survey_request, helpwire__v1__survey,
        hw_surveys_submit, BRIDGE),
    RPC("/helpwire.v1.Surveys/GetSurvey", helpwire__v1__get_survey_request, helpwire__v1__survey,
        hw_surveys_get, HW_ALLOW_BRIDGE | HW_ALLOW_AGENT | HW_ALLOW_ADMIN, false),
    RPC("/helpwire.v1.Surveys/GetSurveyStats", helpwire__v1__get_survey_stats_request,
        helpwire__v1__survey_stats, hw_surveys_stats, AGENT, false),

    RPC("/helpwire.v1.Reports/GetCsatReport", helpwire__v1__report_request, helpwire__v1__csat_report,
        hw_reports_csat, AGENT, false),
    RPC("/helpwire.v1.Reports/GetSlaReport", helpwire__v1__report_request, helpwire__v1__sla_report,
        hw_reports_sla, AGENT, false),

    WRITE("/helpwire.v1.Router/Route", helpwire__v1__route_request, helpwire__v1__route_reply, hw_router_route,
        BRIDGE),

    WRITE("/helpwire.v1.Attachments/PutChunk", helpwire__v1__put_chunk_request, helpwire__v1__put_chunk_reply,
        hw_attachments_put_chunk, BRIDGE | AGENT),
    WRITE("/helpwire.v1.Attachments/CommitAttachment", helpwire__v1__commit_attachment_request,
        helpwire__v1__attachment, hw_attachments_commit, BRIDGE | AGENT),
    RPC("/helpwire.v1.Attachments/GetAttachment", helpwire__v1__get_attachment_request,
        helpwire__v1__attachment_chunk, hw_attachments_get, BRIDGE | AGENT, true),

    RPC("/helpwire.v1.Customers/GetCustomer", helpwire__v1__get_customer_request, helpwire__v1__customer,
        hw_customers_get, AGENT, false),
    RPC("/helpwire.v1.Customers/LookupCustomer", helpwire__v1__lookup_customer_request,
        helpwire__v1__customer, hw_customers_lookup, BRIDGE | AGENT, false),
    WRITE("/helpwire.v1.Customers/UpdateCustomer", helpwire__v1__update_customer_request,
        helpwire__v1__customer, hw_customers_update, AGENT),
    WRITE("/helpwire.v1.Customers/LinkIdentity", helpwire__v1__link_identity_request, helpwire__v1__customer,
        hw_customers_link, AGENT),
    WRITE("/helpwire.v1.Customers/EraseCustomer", helpwire__v1__erase_customer_request,
        helpwire__v1__erase_customer_reply, hw_privacy_erase, ADMIN),
    RPC("/helpwire.v1.Customers/ExportCustomer", helpwire__v1__export_customer_request,
        helpwire__v1__customer_export_record, hw_privacy_export, ADMIN, true),

    WRITE("/helpwire.v1.Agents/PutAgent", helpwire__v1__put_agent_request, helpwire__v1__agent, hw_agents_put,
        ADMIN),
    RPC("/helpwire.v1.Agents/GetAgent", helpwire__v1__get_agent_request, helpwire__v1__agent, hw_agents_get,
        AGENT, false),
    RPC("/helpwire.v1.Agents/ListAgents", helpwire__v1__list_agents_request, helpwire__v1__list_agents_reply,
        hw_agents_list, AGENT, false),
    WRITE("/helpwire.v1.Agents/SetPresence", helpwire__v1__set_presence_request,
        helpwire__v1__set_presence_reply, hw_agents_set_presence, AGENT),
    WRITE("/helpwire.v1.Agents/PutSkill", helpwire__v1__put_skill_request, helpwire__v1__skill,
        hw_agents_put_skill, ADMIN),
    RPC("/helpwire.v1.Agents/ListSkills", helpwire__v1__list_skills_request, helpwire__v1__list_skills_reply,
        hw_agents_list_skills, AGENT, false),
    RPC("/helpwire.v1.Agents/GetSchedule", helpwire__v1__get_schedule_request, helpwire__v1__get_schedule_reply,
        hw_schedule_get, AGENT | HW_ALLOW_BRIDGE, false),

    WRITE("/helpwire.v1.Tickets/CreateTicket", helpwire__v1__create_ticket_request,
        helpwire__v1__create_ticket_reply, hw_tickets_create, AGENT),
    RPC("/helpwire.v1.Tickets/GetTicket", helpwire__v1__get_ticket_request, helpwire__v1__get_ticket_reply,
        hw_tickets_get, AGENT, false),
    RPC("/helpwire.v1.Tickets/ListTickets", helpwire__v1__list_tickets_request,
        helpwire__v1__list_tickets_reply, hw_tickets_list, AGENT, false),
    WRITE("/helpwire.v1.Tickets/UpdateTicket", helpwire__v1__update_ticket_request, helpwire__v1__ticket,
        hw_tickets_update, AGENT),
    WRITE("/helpwire.v1.Tickets/AddMessage", helpwire__v1__add_message_request, helpwire__v1__add_message_reply,
        hw_tickets_add_message, AGENT),
    WRITE("/helpwire.v1.Tickets/EscalateTicket", helpwire__v1__escalate_ticket_request, helpwire__v1__ticket,
        hw_tickets_escalate, AGENT),
    LEADER("/helpwire.v1.Tickets/SendChannelSignal", helpwire__v1__send_channel_signal_request,
           helpwire__v1__send_channel_signal_reply, hw_signals_send, AGENT),
    WRITE("/helpwire.v1.Tickets/CloseTicket", helpwire__v1__close_ticket_request,
        helpwire__v1__close_ticket_reply, hw_tickets_close, AGENT),
    RPC("/helpwire.v1.Tickets/GetTicketHistory", helpwire__v1__get_ticket_history_request,
        helpwire__v1__get_ticket_history_reply, hw_tickets_history, AGENT, false),
    RPC("/helpwire.v1.Tickets/WatchTickets", helpwire__v1__watch_tickets_request, helpwire__v1__ticket_event,
        hw_tickets_watch, AGENT, true),

    WRITE("/helpwire.v1.Sla/PutSlaPolicy", helpwire__v1__put_sla_policy_request, helpwire__v1__sla_policy,
        hw_sla_put_policy, ADMIN),
    RPC("/helpwire.v1.Sla/ListSlaPolicies", helpwire__v1__list_sla_policies_request,
        helpwire__v1__list_sla_policies_reply, hw_sla_list_policies, AGENT, false),
    WRITE("/helpwire.v1.Sla/DeleteSlaPolicy", helpwire__v1__delete_sla_policy_request,
        helpwire__v1__delete_sla_policy_reply, hw_sla_delete_policy, ADMIN),

    WRITE("/helpwire.v1.Admin/CreateToken", helpwire__v1__create_token_request,
        helpwire__v1__create_token_reply, hw_auth_create_token, ADMIN),
    WRITE("/helpwire.v1.Admin/RevokeToken", helpwire__v1__revoke_token_request,
        helpwire__v1__revoke_token_reply, hw_auth_revoke_token, ADMIN),
    RPC("/helpwire.v1.Admin/ListTokens", helpwire__v1__list_tokens_request, helpwire__v1__list_tokens_reply,
        hw_auth_list_tokens, ADMIN, false),
    RPC("/helpwire.v1.Admin/Backup", helpwire__v1__backup_request, helpwire__v1__backup_reply,
        hw_admin_backup, ADMIN, false),
    RPC("/helpwire.v1.Admin/GetStats", helpwire__v1__get_stats_request, helpwire__v1__server_stats,
        hw_admin_stats, ADMIN, false),
    RPC("/helpwire.v1.Admin/ListAuditEvents", helpwire__v1__list_audit_events_request,
        helpwire__v1__list_audit_events_reply, hw_admin_list_audit, ADMIN, false),

    RPC("/helpwire.v1.Cluster/GetClusterStatus", helpwire__v1__get_cluster_status_request,
        helpwire__v1__cluster_status, hw_cluster_status, ADMIN, false),
    WRITE("/helpwire.v1.Cluster/AddReplica", helpwire__v1__add_replica_request, helpwire__v1__cluster_status,
        hw_cluster_add_replica, ADMIN),
    WRITE("/helpwire.v1.Cluster/RemoveReplica", helpwire__v1__remove_replica_request,
        helpwire__v1__cluster_status, hw_cluster_remove_replica, ADMIN),
    WRITE("/helpwire.v1.Cluster/TransferLeadership", helpwire__v1__transfer_leadership_request,
        helpwire__v1__cluster_status, hw_cluster_transfer_leadership, ADMIN),
    RPC("/helpwire.v1.Cluster/FetchSnapshot", helpwire__v1__fetch_snapshot_request,
        helpwire__v1__snapshot_chunk, hw_cluster_fetch_snapshot, ADMIN, true),
};

const hw_method *hw_methods(size_t *n)
{
    *n = sizeof table / sizeof table[0];
    return table;
}
