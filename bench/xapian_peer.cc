/*
 * xapian_peer: Xapian as a peer of hw_index in the search benchmark (see
 * xapian_peer.h).
 */
#include "bench/xapian_peer.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>
#include <xapian.h>

struct xp_db {
    std::string dir;
    Xapian::WritableDatabase *w = nullptr;
    Xapian::Database *r = nullptr;
    Xapian::BM25Weight *weight = nullptr;
    unsigned title_boost = 2;
};

extern "C" xp_db *xp_create(double k1, double b, unsigned title_boost)
{
    char tmpl[] = "/tmp/xapian_peer.XXXXXX";
    if (!mkdtemp(tmpl)) {
        perror("xapian_peer: mkdtemp");
        return nullptr;
    }
    xp_db *db = new xp_db;
    db->dir = std::string(tmpl) + "/db";
    db->title_boost = title_boost ? title_boost : 1;
    try {
        db->w = new Xapian::WritableDatabase(db->dir, Xapian::DB_CREATE_OR_OVERWRITE | Xapian::DB_BACKEND_GLASS);
        /* k1, k2 (query length correction: off), k3 (query wdf: each term
         * once), b, min_normlen 0: the plain BM25 hw_index computes. */
        db->weight = new Xapian::BM25Weight(k1, 0, 1, b, 0);
    } catch (const Xapian::Error &e) {
        fprintf(stderr, "xapian_peer: %s\n", e.get_description().c_str());
        delete db;
        return nullptr;
    }
    return db;
}

extern "C" int xp_add(xp_db *db, const xp_term *title, size_t nt, const xp_term *body, size_t nb)
{
    try {
        Xapian::Document doc;
        for (size_t i = 0; i < nt; i++)
            doc.add_term(std::string(title[i].text, title[i].len), db->title_boost);
        for (size_t i = 0; i < nb; i++)
            doc.add_term(std::string(body[i].text, body[i].len), 1);
        db->w->add_document(doc);
    } catch (const Xapian::Error &e) {
        fprintf(stderr, "xapian_peer: add: %s\n", e.get_description().c_str());
        return -1;
    }
    return 0;
}

extern "C" int xp_commit(xp_db *db)
{
    try {
        db->w->commit();
        db->w->close();
        delete db->w;
        db->w = nullptr;
        db->r = new Xapian::Database(db->dir);
    } catch (const Xapian::Error &e) {
        fprintf(stderr, "xapian_peer: commit: %s\n", e.get_description().c_str());
        return -1;
    }
    return 0;
}

extern "C" uint64_t xp_disk_bytes(xp_db *db)
{
    uint64_t total = 0;
    DIR *d = opendir(db->dir.c_str());
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));) {
        struct stat sb;
        std::string p = db->dir + "/" + e->d_name;
        if (stat(p.c_str(), &sb) == 0 && S_ISREG(sb.st_mode))
            total += (uint64_t)sb.st_size;
    }
    closedir(d);
    return total;
}

extern "C" int xp_search(xp_db *db, const xp_term *terms, size_t n, unsigned k, uint32_t *out)
{
    try {
        std::vector<Xapian::Query> qs;
        qs.reserve(n);
        for (size_t i = 0; i < n; i++)
            qs.emplace_back(std::string(terms[i].text, terms[i].len));
        Xapian::Query q(Xapian::Query::OP_OR, qs.begin(), qs.end());
        Xapian::Enquire enq(*db->r);
        enq.set_query(q);
        enq.set_weighting_scheme(*db->weight);
        Xapian::MSet m = enq.get_mset(0, k);
        int got = 0;
        for (Xapian::MSetIterator it = m.begin(); it != m.end() && got < (int)k; ++it)
            out[got++] = *it;
        return got;
    } catch (const Xapian::Error &e) {
        fprintf(stderr, "xapian_peer: search: %s\n", e.get_description().c_str());
        return -1;
    }
}

extern "C" void xp_destroy(xp_db *db)
{
    if (!db)
        return;
    delete db->r;
    delete db->w;
    delete db->weight;
    std::string parent = db->dir.substr(0, db->dir.rfind('/'));
    DIR *d = opendir(db->dir.c_str());
    if (d) {
        for (struct dirent *e; (e = readdir(d));)
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlink((db->dir + "/" + e->d_name).c_str());
        closedir(d);
    }
    rmdir(db->dir.c_str());
    rmdir(parent.c_str());
    delete db;
}
