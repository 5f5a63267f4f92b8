from django.contrib import admin

from search.models import ImageEmbedding, IndexBuild


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
