from django.urls import path

from project import views

urlpatterns = [
    path("", views.index),
    path("login", views.login),
    path("send", views.send),
]
