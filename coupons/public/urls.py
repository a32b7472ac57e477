"""Routes of the public pages under /c/: the reveal page, its embed page and the embed script."""

from django.urls import path

from coupons.public import views

app_name = "public"

# Public tokens are URL-safe base64, exactly the characters of the slug converter.
urlpatterns = [
    path("<slug:token>/", views.reveal_page, name="reveal"),
    path("<slug:token>/embed/", views.embed_page, name="embed"),
    path("<slug:token>/embed.js", views.embed_script, name="embed_script"),
]
