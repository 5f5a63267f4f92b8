from django.contrib import admin

from search.models import ImageEmbedding, IndexBuild, ReindexChunk, ReindexJob


@admin.register(IndexBuild)
class IndexBuildAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "full", "kind", "model_version", "vector_count", "embedded_count", "dropped_count", "created_at", "finished_at"]
    list_filter = ["status", "full", "kind"]
    readonly_fields = [f.name for f in IndexBuild._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # builds are made by `reindex` and the nightly task


@admin.register(ImageEmbedding)
class ImageEmbeddingAdmin(admin.ModelAdmin):
    list_display = ["image", "model_version", "created_at"]
    list_filter = ["model_version"]
    raw_id_fields = ["image"]
    readonly_fields = ["image", "model_version", "created_at"]
    exclude = ["vector"]

    def has_add_permission(self, request) -> bool:
        return False


class ReindexChunkInline(admin.TabularInline):
    model = ReindexChunk
    fields = readonly_fields = ["number", "first_id", "last_id", "image_count", "status", "attempts", "embedded_count", "worker", "error"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ReindexJob)
class ReindexJobAdmin(admin.ModelAdmin):
    """Distributed reindex jobs: progress per chunk; `reindex --resume JOB` queues what is unfinished."""

    list_display = ["id", "status", "model_version", "image_count", "chunk_size", "build", "created_at", "finished_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in ReindexJob._meta.fields]
    inlines = [ReindexChunkInline]

    def has_add_permission(self, request) -> bool:
        return False  # jobs are made by `reindex --distributed`
