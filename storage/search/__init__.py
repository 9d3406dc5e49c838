"""The keyword-search index: a tantivy index beside the store, derived from MongoDB.

MongoDB stays the record of every article; ``DATA/search/`` holds a tantivy index of
their search terms (``storage.mongo.terms.terms_for``: simplified CJK bigrams and ASCII
words, joined by spaces and indexed by tantivy's whitespace tokenizer, so a term means
exactly what it means to our own text check), the sections and the publication date
(fast fields: "newest 20" is sorted inside tantivy), and the article's URL, the only
stored field. It is a cache: ``gzarchive search reindex`` rebuilds it from MongoDB.

- ``layout``: where the index lives (``CURRENT`` names the live index directory), the
  link between a store and its index (``store_meta`` ``{_id: "search"}``);
- ``schema``: the tantivy schema and the index document of an article;
- ``indexer``: catch-up from the articles marked ``search_pending`` (writer lock taken
  without waiting: one writer per index directory, across processes);
- ``rebuild``: the resumable full build (``search reindex``, and the migration of a
  store of the ``search_postings`` layout);
- ``searcher``: exact searches, tantivy's hits merged with a brute-force check of the
  pending articles, every hit confirmed against MongoDB.
"""
